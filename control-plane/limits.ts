/** Every size and count limit in one typed object; commands may override fields from flags. */
export interface Limits {
  /** Largest manifest or plan file read, in bytes. */
  maxFileBytes: number
  /** YAML alias expansions allowed in one document (billion-laughs guard). */
  maxYamlAliases: number
  /** Largest receipt accepted by `evidence verify`, in bytes. */
  maxReceiptBytes: number
  /** Largest number of images a repository may hold. */
  maxImages: number
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxFileBytes: 1024 * 1024,
  maxYamlAliases: 50,
  maxReceiptBytes: 4 * 1024 * 1024,
  maxImages: 100_000,
})
