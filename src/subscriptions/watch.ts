/**
 * WatchSubscription: the responses recorded from an interval on, then each new one once, until the
 * subscription completes or is cancelled (or the caller aborts, or the component stops).
 */
import type { TypedEmitter } from '../events.ts'
import type { SubscriptionResponse } from '../protocol/index.ts'
import type { SubscriptionBook } from './book.ts'
import { SubscriptionNotFoundError } from './errors.ts'
import { checkSubscriptionId } from './request.ts'

export interface WatchEvents {
  delivered: SubscriptionResponse
  changed: string
  tick: undefined
}

export interface WatchDeps {
  book: SubscriptionBook
  events: TypedEmitter<WatchEvents>
  nowS: () => number
  /** False once the component that made this watch has stopped. */
  live: () => boolean
  /** Responses of `id` accepted but still being replicated: the watch does not end over them. */
  publishing: (id: string) => number
}

export async function * watchResponses (deps: WatchDeps, id: string, fromInterval: number, signal?: AbortSignal): AsyncGenerator<SubscriptionResponse> {
  const { book, events } = deps
  checkSubscriptionId(id)
  if (book.get(id) === undefined) throw new SubscriptionNotFoundError(id)
  const queue: SubscriptionResponse[] = []
  const seen = new Set<string>()
  let wake: (() => void) | undefined
  const poke = (): void => { wake?.() }
  // Listen before the replay, so nothing accepted in between is missed (seen drops the overlap).
  const offs = [
    events.on('delivered', (r) => { if (r.subscriptionId === id) { queue.push(r); poke() } }),
    events.on('changed', poke),
    events.on('tick', poke)
  ]
  signal?.addEventListener('abort', poke)
  try {
    if (fromInterval > 0) {
      for (const r of await book.responses(id, fromInterval)) {
        seen.add(`${r.interval}!${r.nodeId}`)
        yield r
      }
    }
    while (true) {
      while (queue.length > 0) {
        const r = queue.shift() as SubscriptionResponse
        const key = `${r.interval}!${r.nodeId}`
        if (seen.has(key) || (fromInterval > 0 && r.interval < fromInterval)) continue
        seen.add(key)
        yield r
      }
      if (signal?.aborted === true || !deps.live()) return
      const h = book.get(id)
      const state = h === undefined ? 'cancelled' : book.state(h, deps.nowS())
      if ((state === 'completed' || state === 'cancelled') && deps.publishing(id) === 0) return
      await new Promise<void>((resolve) => { wake = resolve })
      wake = undefined
    }
  } finally {
    for (const off of offs) off()
    signal?.removeEventListener('abort', poke)
  }
}
