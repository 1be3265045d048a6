/**
 * A least-recently-used cache bounded by a total weight (each entry weighs 1 unless `weigh` says
 * otherwise): the one bounded cache of the core (parsed commits and trees, delta bases, cached
 * decisions). A Map keeps insertion order, so the first key is the least recently used.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, V>()
  private total = 0

  constructor(
    private readonly limit: number,
    private readonly weigh: (v: V) => number = () => 1,
  ) {}

  get size(): number {
    return this.map.size
  }

  /** The value for `k`, now the most recently used. */
  get(k: K): V | undefined {
    const v = this.map.get(k)
    if (v !== undefined) {
      this.map.delete(k)
      this.map.set(k, v)
    }
    return v
  }

  /** Keeps `v` as the most recently used, dropping the least recently used past the limit. */
  set(k: K, v: V): void {
    const old = this.map.get(k)
    if (old !== undefined) {
      this.map.delete(k)
      this.total -= this.weigh(old)
    }
    this.map.set(k, v)
    this.total += this.weigh(v)
    for (const [key, value] of this.map) {
      if (this.total <= this.limit) break
      this.map.delete(key)
      this.total -= this.weigh(value)
    }
  }
}
