/**
 * What a merge brings into its first parent: the commits reachable from its other parent and not
 * from the first. Computed exactly (no date heuristics) by painting both histories down in order
 * of effective time, which never increases from a commit to its parents: once nothing the other
 * parent reaches is left unpainted by the first, and every first-parent commit still to visit is
 * older than what was found, nothing can change. A linear history never gets here.
 */

/** How the painting reads the graph. */
export interface MergeGraph {
  parents(oid: string): Promise<string[]>
  /** A commit's effective time: never greater than any of its children's. */
  time(oid: string): Promise<number>
  /** A commit the first parent reaches by definition (the trust anchor, and commits before it): never walked past. */
  isFloor(oid: string): boolean
}

const OURS = 1
const THEIRS = 2

/** A max-heap of commits by effective time. */
class ByTime {
  private readonly items: Array<[number, string]> = []
  get size(): number {
    return this.items.length
  }
  peek(): number {
    return this.items[0]![0]
  }
  push(time: number, oid: string): void {
    const a = this.items
    a.push([time, oid])
    for (let i = a.length - 1; i > 0; ) {
      const up = (i - 1) >> 1
      if (a[up]![0] >= a[i]![0]) break
      ;[a[up], a[i]] = [a[i]!, a[up]!]
      i = up
    }
  }
  pop(): string {
    const a = this.items
    const top = a[0]!
    const last = a.pop()!
    if (a.length > 0) {
      a[0] = last
      for (let i = 0; ; ) {
        const [l, r] = [2 * i + 1, 2 * i + 2]
        let m = i
        if (l < a.length && a[l]![0] > a[m]![0]) m = l
        if (r < a.length && a[r]![0] > a[m]![0]) m = r
        if (m === i) break
        ;[a[m], a[i]] = [a[i]!, a[m]!]
        i = m
      }
    }
    return top[1]
  }
}

/** The commits reachable from `theirs` and not from `ours`. */
export async function broughtIn(ours: string, theirs: string, graph: MergeGraph): Promise<string[]> {
  const color = new Map<string, number>()
  const expanded = new Map<string, number>()
  const heap = new ByTime()
  /** Queued commits the first parent has not reached (yet). */
  const open = new Set<string>()
  const found = new Set<string>()
  let oldestFound = Infinity
  const paint = async (oid: string, c: number) => {
    const before = color.get(oid) ?? 0
    const after = before | c | (graph.isFloor(oid) ? OURS : 0)
    if (after === before) return
    color.set(oid, after)
    if (after & OURS) open.delete(oid)
    else open.add(oid)
    heap.push(await graph.time(oid), oid)
  }
  await paint(ours, OURS)
  await paint(theirs, THEIRS)
  while (heap.size > 0 && (open.size > 0 || heap.peek() >= oldestFound)) {
    const oid = heap.pop()
    open.delete(oid)
    const c = color.get(oid)!
    if (expanded.get(oid) === c) continue
    expanded.set(oid, c)
    if (!(c & OURS)) {
      found.add(oid)
      oldestFound = Math.min(oldestFound, await graph.time(oid))
    }
    if (graph.isFloor(oid)) continue
    for (const p of await graph.parents(oid)) await paint(p, c)
  }
  return [...found].filter((oid) => !(color.get(oid)! & OURS))
}
