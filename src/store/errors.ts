/** The store was used before start() or after stop(). */
export class NotStartedError extends Error {
  readonly code = 'NOT_STARTED'
  constructor (what = 'job store') {
    super(`${what} is not started (call start() first)`)
    this.name = 'NotStartedError'
  }
}

/** LevelDB could not be opened (another process holds the lock, bad path, permissions). */
export class StoreOpenError extends Error {
  readonly code = 'STORE_OPEN_FAILED'
  readonly path: string
  constructor (path: string, options?: ErrorOptions) {
    const reason = options?.cause instanceof Error ? options.cause.message : String(options?.cause ?? 'unknown error')
    super(`cannot open job store at ${path}: ${reason} (is another node using the same store.path?)`, options)
    this.name = 'StoreOpenError'
    this.path = path
  }
}
