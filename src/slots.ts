/** Thrown by Slots.acquire when its signal aborts first; `reason` is the signal's reason. */
export class SlotWaitAbortedError extends Error {
  readonly code = 'SLOT_WAIT_ABORTED'
  readonly reason: unknown
  constructor (reason: unknown) {
    super('gave up waiting for a free slot')
    this.name = 'SlotWaitAbortedError'
    this.reason = reason
  }
}

/**
 * A counting semaphore with a FIFO wait line: at most `limit` holders at once, the oldest waiter
 * served first, and a waiter whose signal aborts leaves the line without taking a slot.
 */
export class Slots {
  readonly limit: number
  #active = 0
  readonly #waiting: Array<{ grant: () => void }> = []

  constructor (limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`slot limit must be a positive integer, got ${limit}`)
    this.limit = limit
  }

  get active (): number {
    return this.#active
  }

  get waiting (): number {
    return this.#waiting.length
  }

  /** Resolves with a release function once a slot is free; call it exactly once when done. */
  async acquire (signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted === true) throw new SlotWaitAbortedError(signal.reason)
    if (this.#active < this.limit && this.#waiting.length === 0) {
      this.#active += 1
      return this.#releaser()
    }
    return await new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          this.#active += 1
          resolve(this.#releaser())
        }
      }
      const onAbort = (): void => {
        const at = this.#waiting.indexOf(entry)
        if (at !== -1) this.#waiting.splice(at, 1)
        reject(new SlotWaitAbortedError(signal?.reason))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(entry)
    })
  }

  #releaser (): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      this.#active -= 1
      const next = this.#waiting.shift()
      next?.grant()
    }
  }
}
