import {closeSync, constants, lstatSync, openSync, readSync} from 'node:fs'
import {link, open, stat, unlink} from 'node:fs/promises'
import {makeFolder, readRegularFile, tempName} from '../repo/files.js'
import {dirname, join} from 'node:path'
import type {Repository} from '../repo/repository.js'
import {AirlockError} from '../errors.js'

/**
 * Reads a private key file: a regular file only (a FIFO or folder is refused at once), and one
 * that group or others may read is refused (DESIGN.md §6).
 */
export async function readPrivateFile(path: string): Promise<string> {
  let st
  try {
    st = await stat(path)
  } catch (error) {
    throw new AirlockError('KEY_MISSING', `${path}: no such key file`, {file: path, cause: String(error)})
  }
  if (st.isFile() && (st.mode & 0o077) !== 0) {
    const octal = (st.mode & 0o777).toString(8).padStart(4, '0')
    throw new AirlockError('KEY_PERMISSIONS', `${path}: private key is readable by others (mode ${octal}); run: chmod 600 ${path}`, {file: path, mode: octal})
  }
  return readRegularFile(path, {maxBytes: 64 * 1024, missingCode: 'KEY_MISSING'})
}

export async function writeNewPrivateFile(path: string, text: string): Promise<void> {
  await makeFolder(dirname(path), {label: path, mode: 0o700})
  let handle
  try {
    handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new AirlockError('KEY_EXISTS', `${path}: a key file is already there; refusing to overwrite it`, {file: path})
    throw error
  }
  try {
    await handle.writeFile(text)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * A new private key written next to its final name (`<path>.<pid>-<random>.airlock-tmp`, 0600)
 * and put in place only by `commit()`, once the change that trusts it is committed; `discard()`
 * removes it. A crash in between leaves the temporary file, which `airlock repair` puts in place
 * when HEAD's trust.yaml holds its key and removes otherwise: no key without its trust entry.
 */
export async function stagePrivateFile(path: string, text: string): Promise<{tmp: string; commit(): Promise<void>; discard(): Promise<void>}> {
  const tmp = tempName(path)
  await writeNewPrivateFile(tmp, text)
  return {
    tmp,
    async commit() {
      try {
        await link(tmp, path)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new AirlockError('KEY_EXISTS', `${path}: a key file appeared meanwhile; the new key is kept in ${tmp}`, {file: path, tmp})
        throw error
      }
      await unlink(tmp)
    },
    discard: () => unlink(tmp).catch(() => {}),
  }
}

/**
 * A private key as airlock writes one (PKCS#8 PEM) and as other tools do: PEM (RSA, EC, DSA,
 * ENCRYPTED, OPENSSH…), OpenSSH's own format, OpenPGP secret keys, the SSH2 (RFC 4716) encrypted form
 * and PuTTY's .ppk.
 */
const PRIVATE_KEY = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----|^PuTTY-User-Key-File-\d+:/m

/** A key file git would commit: tracked already, or untracked and not ignored. */
export interface ExposedKey {
  path: string
  tracked: boolean
}

/**
 * The files in the work tree holding a private key that git does not ignore (DESIGN.md §6:
 * private keys are never committed): each regular file git would list, read up to `maxBytes`.
 * One synchronous loop with one buffer (a promise per open/read/close cost more than the reads on
 * a fleet of thousands of files); a symbolic link or anything but a regular file is not opened.
 */
export async function exposedPrivateKeys(repo: Repository, maxBytes: number): Promise<ExposedKey[]> {
  const found: ExposedKey[] = []
  const head = Buffer.alloc(maxBytes)
  for (const file of await repo.unignoredFiles()) {
    const abs = join(repo.dir, file.path)
    let fd
    try {
      if (!lstatSync(abs).isFile()) continue
      fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW)
    } catch {
      continue
    }
    let bytesRead
    try {
      bytesRead = readSync(fd, head, 0, maxBytes, 0)
    } finally {
      closeSync(fd)
    }
    if (holdsPrivateKey(head, bytesRead)) found.push(file)
  }
  return found
}

/**
 * Whether the first `length` bytes of `bytes` hold a private key (PRIVATE_KEY, read as latin1).
 * Every form PRIVATE_KEY matches contains `PRIVATE KEY` or `PuTTY-User-Key-File-`, so a file with
 * neither (nearly every file) is judged without making a string of it.
 */
export function holdsPrivateKey(bytes: Buffer, length: number): boolean {
  const view = bytes.subarray(0, length)
  if (view.indexOf('PRIVATE KEY', 0, 'latin1') < 0 && view.indexOf('PuTTY-User-Key-File-', 0, 'latin1') < 0) return false
  return PRIVATE_KEY.test(view.toString('latin1'))
}
