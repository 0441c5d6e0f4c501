import type { Logger } from '../telemetry/logger.ts'

/** A set of callbacks where one that throws is logged and never stops the others or the caller. */
export class Listeners<T> {
  readonly #set = new Set<(value: T) => void>()
  readonly #log: Logger
  readonly #what: string

  constructor (log: Logger, what: string) {
    this.#log = log
    this.#what = what
  }

  add (listener: (value: T) => void): () => void {
    this.#set.add(listener)
    return () => { this.#set.delete(listener) }
  }

  emit (value: T, logFields: Record<string, unknown> = {}): void {
    // A copy, so a listener that unsubscribes (or subscribes) while called does not skip anyone.
    for (const listener of [...this.#set]) {
      try {
        listener(value)
      } catch (err) {
        this.#log.warn({ err, ...logFields }, `${this.#what} listener threw`)
      }
    }
  }
}
