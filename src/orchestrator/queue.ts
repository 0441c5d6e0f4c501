/** setTimeout's ceiling; deadlines are far below it (MAX_DEADLINE_MS), this only keeps a bad value from firing at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Pending job ids in FIFO order, each with a timer that calls onExpire at the job's deadline, so a job
 * still waiting then fails without running instead of waiting for a slot it can no longer use.
 */
export class PendingQueue {
  #ids: string[] = []
  readonly #timers = new Map<string, NodeJS.Timeout>()
  readonly #onExpire: (id: string) => void

  constructor (onExpire: (id: string) => void) {
    this.#onExpire = onExpire
  }

  get size (): number {
    return this.#ids.length
  }

  push (id: string, deadlineAtMs: number): void {
    this.#ids.push(id)
    const delay = Math.min(Math.max(0, deadlineAtMs - Date.now()), MAX_TIMER_MS)
    this.#timers.set(id, setTimeout(() => {
      this.#timers.delete(id)
      const at = this.#ids.indexOf(id)
      if (at === -1) return
      this.#ids.splice(at, 1)
      this.#onExpire(id)
    }, delay))
  }

  /** The oldest id, its deadline timer cleared (the run has its own); undefined when empty. */
  shift (): string | undefined {
    const id = this.#ids.shift()
    if (id !== undefined) {
      clearTimeout(this.#timers.get(id))
      this.#timers.delete(id)
    }
    return id
  }

  /** Forgets every id and timer (the jobs stay pending in the store). */
  clear (): void {
    for (const timer of this.#timers.values()) clearTimeout(timer)
    this.#timers.clear()
    this.#ids = []
  }
}
