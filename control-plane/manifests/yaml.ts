import {isMap, LineCounter, parseDocument, type Document} from 'yaml'
import {inputError} from '../errors.js'
import {checkDepth, checkNesting, type Limits} from '../limits.js'

export interface LoadedYaml {
  file: string
  text: string
  doc: Document
  value: unknown
  lines: LineCounter
}

/** Parses one YAML document under the size and alias limits; errors name file, line and column. */
export function loadYaml(text: string, file: string, limits: Limits): LoadedYaml {
  const bytes = Buffer.byteLength(text)
  if (bytes > limits.maxFileBytes) {
    throw inputError('TOO_LARGE', {file}, `file is ${bytes} bytes, the limit is ${limits.maxFileBytes}`)
  }
  checkNesting(text, file, 'yaml', limits.maxDepth)
  const lines = new LineCounter()
  const doc = parseDocument(text, {lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true})
  const first = doc.errors[0]
  if (first) {
    const pos = lines.linePos(first.pos[0])
    throw inputError('YAML_ERROR', {file, line: pos.line, column: pos.col}, first.message.split('\n')[0]!)
  }
  let value: unknown
  try {
    value = doc.toJS({maxAliasCount: limits.maxYamlAliases})
  } catch (error) {
    throw inputError('YAML_ERROR', {file}, `${(error as Error).message} (at most ${limits.maxYamlAliases} alias expansions)`)
  }
  checkDepth(value, file, limits.maxDepth)
  return {file, text, doc, value, lines}
}

/** Line and column of the node at `path`, or of its nearest present ancestor. */
export function locate(loaded: LoadedYaml, path: ReadonlyArray<string | number>, key = false): {line?: number; column?: number} {
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n)
    if (key && n === path.length && n > 0) {
      const parent = sub.length > 1 ? loaded.doc.getIn(sub.slice(0, -1), true) : loaded.doc.contents
      if (isMap(parent)) {
        const pair = parent.items.find((p) => (p.key as {value?: unknown})?.value === sub[sub.length - 1])
        const range = (pair?.key as {range?: [number, number, number]})?.range
        if (range) return position(loaded, range[0])
      }
    }
    const node = n === 0 ? loaded.doc.contents : loaded.doc.getIn(sub, true)
    const range = (node as {range?: [number, number, number]} | null)?.range
    if (range) return position(loaded, range[0])
  }
  return {}
}

function position(loaded: LoadedYaml, offset: number): {line: number; column: number} {
  const pos = loaded.lines.linePos(offset)
  return {line: pos.line, column: pos.col}
}
