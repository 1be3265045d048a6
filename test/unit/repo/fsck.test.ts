/**
 * airlock reads git objects as `git fsck --strict` judges them. Each malformed tree or commit
 * below is built with git plumbing (`hash-object --literally`) in a real repository and made
 * reachable by a ref; for each, git's own fsck must report the fsck id airlock names, and
 * every read airlock makes (treeEntries, readFile and listDir at a commit, changedTreeEntries,
 * readCommit) must refuse it as BROKEN_OBJECT. Then the other way round: every tree and commit
 * of this project's own history parses.
 */
import {execa} from 'execa'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {Repository} from '../../../control-plane/repo/repository.js'
import {git, ROOT, tempDir} from '../../helpers.js'

const t = await tempDir('airlock-fsck-')
afterAll(() => t.cleanup())
const dir = t.dir
await git(dir, 'init', '-q', '-b', 'main')

/** Writes an object as given, without git's checks (what a push to a lenient server stores). */
async function literally(type: 'tree' | 'commit' | 'blob', content: Buffer | string): Promise<string> {
  return (await execa('git', ['hash-object', '-t', type, '--literally', '-w', '--stdin'], {cwd: dir, input: content})).stdout
}

type Entry = [mode: string, name: string | Buffer, oid: string]
/** A raw tree object: `<mode> <name>\0<20-byte id>` for each entry, in the order given. */
const treeOf = (entries: Entry[]) => literally('tree', Buffer.concat(entries.flatMap(([mode, name, oid]) => [Buffer.from(`${mode} `), Buffer.isBuffer(name) ? name : Buffer.from(name, 'utf8'), Buffer.from([0]), Buffer.from(oid, 'hex')])))

const AUTHOR = 'author A U Thor <author@example.com> 1700000000 +0000'
const COMMITTER = 'committer C O Mitter <committer@example.com> 1700000000 +0100'
const commitOf = (tree: string) => literally('commit', `tree ${tree}\n${AUTHOR}\n${COMMITTER}\n\nholds a case\n`)

const BLOB = await literally('blob', 'hello\n')
const OTHER_BLOB = await literally('blob', 'an attacker\'s\n')
const SUB = await treeOf([['100644', 'x', BLOB]])
const OTHER_SUB = await treeOf([['100644', 'y', OTHER_BLOB]])
/** An honest tree and commit: what each malformed object is compared with. */
const GOOD = await treeOf([['100644', 'a', BLOB], ['40000', 'manifests', SUB]])
const PARENT = await commitOf(GOOD)

/** The test's reading of this repository: a fresh object cache for every case. */
const open = () => Repository.open(dir)

interface TreeCase {
  what: string
  entries: Entry[]
  /** The fsck message id git reports for it. */
  id: string
  /** The object git names in its report, when not the tree itself (fsck_blobs names the .gitmodules object). */
  named?: string
}

interface Built {
  tree: string
  commit: string
}

/** The commit of each case, each to be reachable from a ref of its own when fsck runs. */
const reachable: Array<Promise<string>> = []
/** Builds a tree case: the tree and a commit holding it. */
function buildTree(entries: Entry[]): Promise<Built> {
  const made = (async () => {
    const tree = await treeOf(entries)
    return {tree, commit: await commitOf(tree)}
  })()
  reachable.push(made.then((b) => b.commit))
  return made
}
function buildCommit(text: string): Promise<string> {
  const made = literally('commit', text)
  reachable.push(made)
  return made
}

/** `git fsck --strict` over the repository, once every case is built and reachable from a ref. */
let fsckRun: Promise<string> | undefined
function fsckOutput(): Promise<string> {
  fsckRun ??= (async () => {
    // Written as files: git update-ref refuses to point at a commit it cannot parse.
    await mkdir(join(dir, '.git', 'refs', 'cases'), {recursive: true})
    for (const [i, oid] of (await Promise.all(reachable)).entries()) await writeFile(join(dir, '.git', 'refs', 'cases', String(i)), `${oid}\n`)
    const r = await execa('git', ['fsck', '--strict', '--no-dangling'], {cwd: dir, reject: false, all: true})
    return String(r.all)
  })()
  return fsckRun
}
/**
 * git fsck names `oid` with the message id `id` ("error in tree <oid>: duplicateEntries: …").
 * A commit whose tree or parent lines git cannot even parse is refused before fsck_commit
 * looks at it: git says "object could not be parsed" (the id is fsck.c's for the same check).
 */
async function expectFsckReports(oid: string, id: string, unparsable = false): Promise<void> {
  const said = (await fsckOutput()).split('\n').filter((line) => line.includes(oid))
  expect(said.join('\n'), `git fsck on ${oid}`).toMatch(new RegExp(`\\b${id}:${unparsable ? '|: object could not be parsed' : ''}`))
}

/** Every read airlock makes of a commit holding a malformed tree refuses it, naming the fsck id. */
async function expectTreeRefused(built: Built, id: string | null): Promise<void> {
  const reads: Array<[string, (repo: Repository) => Promise<unknown>]> = [
    ['treeEntries', (repo) => repo.treeEntries(built.tree)],
    ['readFile', (repo) => repo.readFile(built.commit, 'a')],
    ['listDir', (repo) => repo.listDir(built.commit, '')],
    ['changedTreeEntries from it', (repo) => repo.changedTreeEntries(built.tree, GOOD)],
    ['changedTreeEntries to it', (repo) => repo.changedTreeEntries(GOOD, built.tree)],
    ['changedTreeEntries from nothing', (repo) => repo.changedTreeEntries(null, built.tree)],
  ]
  for (const [what, read] of reads) {
    const repo = await open()
    await expect(read(repo), what).rejects.toThrowAirlockError('BROKEN_OBJECT')
    await expect(read(repo), what).rejects.toThrow(id ? `(git fsck: ${id})` : /malformed folder/)
  }
}

/** Describes one kind of malformed tree: git fsck reports each case, airlock refuses each. */
function treeCases(cases: TreeCase[]): void {
  const built = cases.map((c) => ({c, made: buildTree(c.entries)}))
  it.each(built.map(({c, made}) => [c.what, c, made] as const))('%s: git fsck --strict reports it', async (_, c, made) => {
    const {tree} = await made
    await expectFsckReports(c.named ?? tree, c.id)
  })
  it.each(built.map(({c, made}) => [c.what, c, made] as const))('%s: airlock refuses it as BROKEN_OBJECT', async (_, c, made) => {
    await expectTreeRefused(await made, c.id)
  })
}

describe('when a folder has the same name twice', () => {
  treeCases([
    {what: 'file and file', entries: [['100644', 'a', BLOB], ['100644', 'a', OTHER_BLOB]], id: 'duplicateEntries'},
    {what: 'folder and folder', entries: [['100644', 'a', BLOB], ['40000', 'manifests', SUB], ['40000', 'manifests', OTHER_SUB]], id: 'duplicateEntries'},
    {what: 'file then folder', entries: [['100644', 'a', BLOB], ['100644', 'manifests', BLOB], ['40000', 'manifests', SUB]], id: 'duplicateEntries'},
    // "a" < "a.b" < "a/": the file and the folder of one name are not neighbours.
    {what: 'file and folder apart', entries: [['100644', 'a', BLOB], ['100644', 'a.b', BLOB], ['40000', 'a', SUB]], id: 'duplicateEntries'},
  ])
})

describe("when entries are out of git's order", () => {
  treeCases([
    {what: 'b before a', entries: [['100644', 'b', BLOB], ['100644', 'a', BLOB]], id: 'treeNotSorted'},
    // A folder sorts as if its name ended in "/": "a.b" < "a/".
    {what: 'folder a before file a.b', entries: [['40000', 'a', SUB], ['100644', 'a.b', BLOB]], id: 'treeNotSorted'},
    {what: 'upper case after lower case', entries: [['100644', 'a', BLOB], ['100644', 'B', BLOB]], id: 'treeNotSorted'},
  ])
})

describe('when an entry has a mode git fsck --strict refuses', () => {
  treeCases([
    {what: 'zero-padded folder 040000', entries: [['100644', 'a', BLOB], ['040000', 'manifests', SUB]], id: 'zeroPaddedFilemode'},
    {what: 'zero-padded file 0100644', entries: [['0100644', 'a', BLOB]], id: 'zeroPaddedFilemode'},
    // badFilemode is an "info" finding: git prints it as a warning even under --strict; airlock refuses it.
    ...['100664', '100666', '100600', '100744', '120644', '160644', '40755'].map((mode): TreeCase => ({what: `mode ${mode}`, entries: [[mode, 'a', BLOB]], id: 'badFilemode'})),
  ])
})

describe('when an entry is a spelling of .git', () => {
  const names: Array<[string, string]> = [
    ['.git', 'the name itself'],
    ['.GIT', 'upper case'],
    ['.gIt', 'mixed case'],
    ['.g\u200cit', 'HFS+: a zero-width non-joiner inside'],
    ['\u200e.git', 'HFS+: a left-to-right mark before'],
    ['.git\ufeff', 'HFS+: a byte-order mark after'],
    ['.G\u202eIT\u206f', 'HFS+: case and ignorables together'],
    ['git~1', 'NTFS: the short name'],
    ['GIT~1', 'NTFS: the short name in upper case'],
    ['.git.', 'NTFS: a trailing dot'],
    ['.git ', 'NTFS: a trailing space'],
    ['.git . .', 'NTFS: trailing dots and spaces'],
    ['.git::$INDEX_ALLOCATION', 'NTFS: the folder stream'],
    ['git~1:stream', 'NTFS: a stream of the short name'],
    ['x\\.git', 'NTFS: after a backslash'],
    ['x\\git~1\\y', 'NTFS: the short name between backslashes'],
  ]
  treeCases(names.map(([name, what]) => ({what: `${JSON.stringify(name)} (${what})`, entries: [['40000', name, SUB]], id: 'hasDotgit'})))
})

describe('when an entry is named ".", ".." or nothing, or its name holds a "/"', () => {
  treeCases([
    {what: '"."', entries: [['40000', '.', SUB]], id: 'hasDot'},
    {what: '".."', entries: [['40000', '..', SUB]], id: 'hasDotdot'},
    // decode_tree_entry refuses an empty name: the tree "cannot be parsed".
    {what: 'an empty name', entries: [['100644', '', BLOB]], id: 'badTree'},
    {what: '"manifests/images"', entries: [['100644', 'manifests/images', BLOB]], id: 'fullPathname'},
  ])
})

/** A tree object of any bytes, and a commit holding it. */
function buildBytes(bytes: Buffer): Promise<Built> {
  const made = (async () => {
    const tree = await literally('tree', bytes)
    return {tree, commit: await commitOf(tree)}
  })()
  reachable.push(made.then((b) => b.commit))
  return made
}

describe('when the bytes are not entries', () => {
  it.each([
    ['a mode that is not octal', Buffer.from('100648 a\0' + 'x'.repeat(20), 'latin1')],
    ['no mode', Buffer.from(' a\0' + 'x'.repeat(20), 'latin1')],
    ['a truncated object id', Buffer.from('100644 a\0' + 'x'.repeat(19), 'latin1')],
    ['no NUL after the name', Buffer.from('100644 abc', 'latin1')],
  ].map(([what, bytes]) => [what, buildBytes(bytes as Buffer)] as const))('%s: git fsck --strict reports it', async (_, made) => {
    await expectFsckReports((await made).tree, 'badTree')
    await expectTreeRefused(await made, 'badTree')
  })
})

describe('when an entry points at the null object id', () => {
  treeCases([{what: 'a file', entries: [['100644', 'a', '0'.repeat(40)]], id: 'nullSha1'}])
})

describe('when .gitmodules, or another file git reads from the tree, is a symbolic link', () => {
  treeCases([
    {what: '.gitmodules', entries: [['120000', '.gitmodules', BLOB]], id: 'gitmodulesSymlink'},
    {what: '.GitModules', entries: [['120000', '.GitModules', BLOB]], id: 'gitmodulesSymlink'},
    {what: 'HFS+: .gitmodules with a zero-width joiner', entries: [['120000', '.gitmodules\u200d', BLOB]], id: 'gitmodulesSymlink'},
    {what: 'NTFS: gitmod~1', entries: [['120000', 'gitmod~1', BLOB]], id: 'gitmodulesSymlink'},
    {what: 'NTFS: the fall-back short name GI7EBA~1', entries: [['120000', 'GI7EBA~1', BLOB]], id: 'gitmodulesSymlink'},
    {what: 'NTFS: .gitmodules with trailing dots and a stream', entries: [['120000', '.gitmodules..:x', BLOB]], id: 'gitmodulesSymlink'},
    {what: 'NTFS: .gitmodules after a backslash', entries: [['120000', 'x\\.gitmodules', BLOB]], id: 'gitmodulesSymlink'},
    // The next three are "info" findings (warnings even under --strict); airlock refuses them.
    {what: '.gitattributes', entries: [['120000', '.gitattributes', BLOB]], id: 'gitattributesSymlink'},
    {what: '.gitignore', entries: [['120000', '.gitignore', BLOB]], id: 'gitignoreSymlink'},
    {what: '.mailmap', entries: [['120000', '.mailmap', BLOB]], id: 'mailmapSymlink'},
  ])
})

/** Folders where git expects a file: fsck names the folder object, not the tree holding it. */
const MODULES = await treeOf([['100644', 'modules', BLOB]])
const ATTRIBUTES = await treeOf([['100644', 'attributes', BLOB]])
describe('when .gitmodules or .gitattributes is a folder', () => {
  treeCases([
    {what: '.gitmodules', entries: [['40000', '.gitmodules', MODULES]], id: 'gitmodulesBlob', named: MODULES},
    {what: '.gitattributes', entries: [['40000', '.gitattributes', ATTRIBUTES]], id: 'gitattributesBlob', named: ATTRIBUTES},
  ])
})

const [MAJOR, MINOR] = (await git(dir, 'version')).replace(/^git version /, '').split('.').map(Number) as [number, number]
describe('when a name is longer than 4096 bytes', () => {
  const made = buildTree([['100644', 'n'.repeat(4097), BLOB]])
  // fsck reports largePathname from git 2.43 on.
  it.skipIf(MAJOR < 2 || (MAJOR === 2 && MINOR < 43))('git fsck --strict reports it', async () => expectFsckReports((await made).tree, 'largePathname'))
  it('airlock refuses it as BROKEN_OBJECT', async () => expectTreeRefused(await made, 'largePathname'))
})

describe('when a name is not UTF-8 (git fsck passes it; airlock, which reads names as text, does not)', () => {
  const made = buildTree([['100644', Buffer.from('caf\xe8', 'latin1'), BLOB], ['100644', Buffer.from('caf\xe9', 'latin1'), BLOB]])
  it('git fsck --strict says nothing about it', async () => {
    const {tree} = await made
    expect((await fsckOutput()).split('\n').filter((line) => line.includes(tree))).toEqual([])
  })
  it('airlock refuses it as BROKEN_OBJECT', async () => expectTreeRefused(await made, null))
})

describe('when the malformed folder is below the root', () => {
  const made = (async () => {
    const manifests = await treeOf([['100644', 'trust.yaml', BLOB], ['100644', 'trust.yaml', OTHER_BLOB]])
    const root = await treeOf([['100644', 'a', BLOB], ['40000', 'manifests', manifests]])
    return {manifests, root, commit: await commitOf(root)}
  })()
  reachable.push(made.then((m) => m.commit))
  it('git fsck --strict reports it', async () => expectFsckReports((await made).manifests, 'duplicateEntries'))
  it('airlock refuses every read that goes through it', async () => {
    const {manifests, root, commit} = await made
    for (const read of [(r: Repository) => r.readFile(commit, 'manifests/trust.yaml'), (r: Repository) => r.listDir(commit, 'manifests'), (r: Repository) => r.changedPaths(GOOD, root)]) {
      await expect(read(await open())).rejects.toThrowAirlockError('BROKEN_OBJECT')
    }
    await expect((await open()).changedTreeEntries(SUB, manifests)).rejects.toThrowAirlockError('BROKEN_OBJECT')
    // The root itself is well formed: what lies beside the broken folder still reads.
    expect((await (await open()).readFile(commit, 'a'))?.text).toBe('hello\n')
  })
})

interface CommitCase {
  what: string
  text: string
  id: string
  /** git's parse_commit_buffer refuses it first: fsck reports it as an object that cannot be parsed. */
  unparsable?: true
}
const head = (lines: string[], message = 'a case\n') => `${lines.join('\n')}\n\n${message}`
const base = [`tree ${GOOD}`, `parent ${PARENT}`]
const withAuthor = (value: string) => head([...base, `author ${value}`, COMMITTER])
const withCommitter = (value: string) => head([...base, AUTHOR, `committer ${value}`])

describe('when a commit header is malformed', () => {
  const cases: CommitCase[] = [
    {what: 'no tree', text: head([`parent ${PARENT}`, AUTHOR, COMMITTER]), id: 'missingTree', unparsable: true},
    {what: 'the tree after the parent', text: head([`parent ${PARENT}`, `tree ${GOOD}`, AUTHOR, COMMITTER]), id: 'missingTree', unparsable: true},
    {what: 'a tree that is not an object id', text: head([`tree ${GOOD.slice(0, 39)}`, AUTHOR, COMMITTER]), id: 'badTreeSha1', unparsable: true},
    {what: 'a parent that is not an object id', text: head([`tree ${GOOD}`, `parent ${PARENT}x`, AUTHOR, COMMITTER]), id: 'badParentSha1', unparsable: true},
    {what: 'no author', text: head([...base, COMMITTER]), id: 'missingAuthor'},
    {what: 'two authors', text: head([...base, AUTHOR, AUTHOR, COMMITTER]), id: 'multipleAuthors'},
    {what: 'no committer', text: head([...base, AUTHOR]), id: 'missingCommitter'},
    {what: 'a parent after the author', text: head([`tree ${GOOD}`, AUTHOR, `parent ${PARENT}`, COMMITTER]), id: 'missingCommitter'},
    {what: 'an author with no name', text: withAuthor('<author@example.com> 1700000000 +0000'), id: 'missingNameBeforeEmail'},
    {what: 'an author with no email', text: withAuthor('A U Thor 1700000000 +0000'), id: 'missingEmail'},
    {what: 'a ">" in the name', text: withAuthor('A U > Thor <author@example.com> 1700000000 +0000'), id: 'badName'},
    {what: 'no space before the email', text: withAuthor('A U Thor<author@example.com> 1700000000 +0000'), id: 'missingSpaceBeforeEmail'},
    {what: 'a "<" in the email', text: withAuthor('A U Thor <author<@example.com> 1700000000 +0000'), id: 'badEmail'},
    {what: 'an email that does not end', text: withAuthor('A U Thor <author@example.com 1700000000 +0000'), id: 'badEmail'},
    {what: 'no space before the date', text: withAuthor('A U Thor <author@example.com>1700000000 +0000'), id: 'missingSpaceBeforeDate'},
    {what: 'a date that is not a number', text: withAuthor('A U Thor <author@example.com> yesterday +0000'), id: 'badDate'},
    {what: 'a date with letters after it', text: withAuthor('A U Thor <author@example.com> 1700000000x +0000'), id: 'badDate'},
    {what: 'a date and no zone', text: withAuthor('A U Thor <author@example.com> 1700000000'), id: 'badDate'},
    {what: 'a zero-padded date', text: withAuthor('A U Thor <author@example.com> 01700000000 +0000'), id: 'zeroPaddedDate'},
    {what: 'a date past 2^63', text: withAuthor('A U Thor <author@example.com> 9223372036854775808 +0000'), id: 'badDateOverflow'},
    {what: 'a date of 30 digits', text: withAuthor(`A U Thor <author@example.com> ${'9'.repeat(30)} +0000`), id: 'badDateOverflow'},
    {what: 'a zone of three digits', text: withAuthor('A U Thor <author@example.com> 1700000000 +000'), id: 'badTimezone'},
    {what: 'a zone with no sign', text: withAuthor('A U Thor <author@example.com> 1700000000 0000'), id: 'badTimezone'},
    {what: 'a zone of five digits', text: withAuthor('A U Thor <author@example.com> 1700000000 +00000'), id: 'badTimezone'},
    {what: 'a zone with a letter', text: withAuthor('A U Thor <author@example.com> 1700000000 +00a0'), id: 'badTimezone'},
    {what: 'a committer with no email', text: withCommitter('C O Mitter 1700000000 +0000'), id: 'missingEmail'},
    {what: 'a committer with a zero-padded date', text: withCommitter('C O Mitter <committer@example.com> 00 +0000'), id: 'zeroPaddedDate'},
    {what: 'a committer with a bad zone', text: withCommitter('C O Mitter <committer@example.com> 1700000000 +01:00'), id: 'badTimezone'},
    {what: 'a NUL in the header', text: withAuthor('A U Thor <author\0@example.com> 1700000000 +0000'), id: 'nulInHeader'},
    {what: 'a NUL in the message', text: head([...base, AUTHOR, COMMITTER], 'a message\0with a NUL\n'), id: 'nulInCommit'},
    {what: 'a header that does not end', text: [...base, AUTHOR, COMMITTER].join('\n'), id: 'unterminatedHeader'},
  ]
  const built = cases.map((c) => ({c, made: buildCommit(c.text)}))
  it.each(built.map(({c, made}) => [c.what, c, made] as const))('%s: git fsck --strict reports it', async (_, c, made) => {
    await expectFsckReports(await made, c.id, c.unparsable)
  })
  it.each(built.map(({c, made}) => [c.what, c, made] as const))('%s: airlock refuses it as BROKEN_OBJECT', async (_, c, made) => {
    const commit = await made
    const reads: Array<[string, (repo: Repository) => Promise<unknown>]> = [
      ['readCommit', (repo) => repo.readCommit(commit)],
      ['readFile', (repo) => repo.readFile(commit, 'a')],
      ['listDir', (repo) => repo.listDir(commit, '')],
      ['oidAt', (repo) => repo.oidAt(commit, 'manifests')],
    ]
    for (const [what, read] of reads) {
      const repo = await open()
      await expect(read(repo), what).rejects.toThrowAirlockError('BROKEN_OBJECT')
      await expect(read(repo), what).rejects.toThrow(`(git fsck: ${c.id})`)
    }
  })
})

describe('when a commit repeats a header git reads once (fsck passes it; isomorphic-git would read the repeat)', () => {
  it.each([
    ['a second tree', head([...base, AUTHOR, COMMITTER, `tree ${SUB}`])],
    ['a second parent', head([...base, AUTHOR, COMMITTER, `parent ${PARENT}`])],
    ['a second author', head([...base, AUTHOR, COMMITTER, AUTHOR])],
    ['a second committer', head([...base, AUTHOR, COMMITTER, COMMITTER])],
  ])('%s after the committer: airlock refuses it as BROKEN_OBJECT', async (_, text) => {
    const commit = await literally('commit', text)
    await expect((await open()).readCommit(commit)).rejects.toThrowAirlockError('BROKEN_OBJECT')
    await expect((await open()).readCommit(commit)).rejects.toThrow(/appears again after the committer/)
  })
})

describe('when the repository is honest', () => {
  it("every tree and commit of this project's own history parses", async () => {
    const listed = (await execa('git', ['rev-list', '--all', '--objects'], {cwd: ROOT})).stdout.split('\n').map((line) => line.slice(0, 40))
    const typed = (await execa('git', ['cat-file', '--batch-check=%(objecttype) %(objectname)'], {cwd: ROOT, input: `${listed.join('\n')}\n`})).stdout.split('\n')
    const repo = await Repository.open(ROOT)
    let trees = 0
    let commits = 0
    for (const line of typed) {
      const [type, oid] = line.split(' ') as [string, string]
      if (type === 'tree') {
        trees++
        await repo.treeEntries(oid)
        await repo.changedTreeEntries(oid, null)
      } else if (type === 'commit') {
        commits++
        await repo.readCommit(oid)
      }
    }
    expect(trees).toBeGreaterThan(0)
    expect(commits).toBeGreaterThan(0)
  })

  it('commits with the whitespace git lets run before a date, and a commit with no message, parse', async () => {
    const spaced = await literally('commit', head([...base, 'author A U Thor <author@example.com>  \t1700000000 +0000', COMMITTER]))
    const bare = await literally('commit', `${[...base, AUTHOR, COMMITTER].join('\n')}\n`)
    for (const commit of [spaced, bare]) {
      const r = await execa('git', ['fsck', '--strict', '--no-dangling', commit], {cwd: dir, reject: false, all: true})
      expect(String(r.all).split('\n').filter((line) => line.includes(commit))).toEqual([])
      expect((await (await open()).readCommit(commit)).tree).toBe(GOOD)
    }
  })

  it("diffs trees in git's order: a folder beside names that sort between it and its '/' (a, a.b, a/)", async () => {
    const one = await treeOf([['100644', 'a.b', BLOB], ['40000', 'a', SUB], ['100644', 'a0', BLOB]])
    const two = await treeOf([['100644', 'a', BLOB], ['100644', 'a.b', OTHER_BLOB], ['100644', 'a0', BLOB]])
    const r = await execa('git', ['fsck', '--strict', '--no-dangling', one, two], {cwd: dir, reject: false, all: true})
    expect(String(r.all).split('\n').filter((line) => line.includes(one) || line.includes(two))).toEqual([])
    const expected = (await git(dir, 'diff-tree', '--raw', one, two)).split('\n').map((line) => line.split('\t')[1]).sort()
    const diff = await (await open()).changedTreeEntries(one, two)
    expect(diff.map((d) => d.name).sort()).toEqual(expected)
    expect(diff).toEqual(expect.arrayContaining([{name: 'a', a: SUB, b: null}, {name: 'a', a: null, b: BLOB}, {name: 'a.b', a: BLOB, b: OTHER_BLOB}]))
  })
})
