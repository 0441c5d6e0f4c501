import type { Logger } from './telemetry/logger.ts'

/**
 * A typed event emitter: one per component, instead of hand-written listener sets. A listener
 * that throws is logged and never stops the other listeners or the emitting component (Node's
 * EventTarget would rethrow it as an uncaught exception and take the process down).
 */
export class TypedEmitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<(value: any) => void>>()
  readonly #log: Logger | undefined

  constructor (log?: Logger) {
    this.#log = log
  }

  /** Calls `listener` for every `name` event; returns the function that unsubscribes it. */
  on<K extends keyof Events> (name: K, listener: (value: Events[K]) => void): () => void {
    let set = this.#listeners.get(name)
    if (set === undefined) {
      set = new Set()
      this.#listeners.set(name, set)
    }
    set.add(listener)
    return () => { set.delete(listener) }
  }

  emit<K extends keyof Events> (name: K, value: Events[K]): void {
    const set = this.#listeners.get(name)
    if (set === undefined || set.size === 0) return
    // A copy, so a listener that unsubscribes (or subscribes) while called does not skip anyone.
    for (const listener of [...set]) {
      try {
        listener(value)
      } catch (err) {
        this.#log?.warn({ err, event: String(name) }, 'event listener threw')
      }
    }
  }

  listenerCount (name: keyof Events): number {
    return this.#listeners.get(name)?.size ?? 0
  }
}
