import type { IncomingMessage, ServerResponse } from 'node:http'
import { MAX_STREAM_BUFFER_BYTES, MAX_STREAM_CLIENTS, STREAM_RETRY_MS } from './constants.ts'
import { DashboardRequestError } from './errors.ts'

/**
 * Server-sent events to the open pages. One JSON encoding per event whatever the number of pages; a
 * page that falls behind (its unsent data past MAX_STREAM_BUFFER_BYTES) is cut off rather than
 * buffered without bound: its EventSource reconnects and the page reloads its state.
 */
export class EventHub {
  readonly #clients = new Set<ServerResponse>()
  readonly #onFirst: () => void
  readonly #onLast: () => void

  /** onFirst/onLast: the first page connected, the last one left (the snapshot timer runs only in between). */
  constructor (hooks: { onFirst: () => void, onLast: () => void }) {
    this.#onFirst = hooks.onFirst
    this.#onLast = hooks.onLast
  }

  get size (): number {
    return this.#clients.size
  }

  /** Answers GET /api/events: headers, the retry hint, then every broadcast until the page leaves. */
  attach (req: IncomingMessage, res: ServerResponse, headers: Record<string, string>): void {
    if (this.#clients.size >= MAX_STREAM_CLIENTS) {
      throw new DashboardRequestError(503, 'TOO_MANY_STREAMS', `the dashboard already serves ${MAX_STREAM_CLIENTS} event streams; close other dashboard tabs`, { 'retry-after': '10' })
    }
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' })
    res.write(`retry: ${STREAM_RETRY_MS}\n\n`)
    this.#clients.add(res)
    const leave = (): void => {
      if (!this.#clients.delete(res)) return
      if (this.#clients.size === 0) this.#onLast()
    }
    req.on('close', leave)
    res.on('close', leave)
    res.on('error', leave)
    if (this.#clients.size === 1) this.#onFirst()
  }

  /** Sends `data` as event `name` to every page. */
  broadcast (name: string, data: unknown): void {
    if (this.#clients.size === 0) return
    const frame = `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`
    for (const res of this.#clients) {
      if (res.writableLength > MAX_STREAM_BUFFER_BYTES) {
        res.destroy()
        continue
      }
      res.write(frame)
    }
  }

  /** Ends every stream (the dashboard stops). */
  close (): void {
    for (const res of [...this.#clients]) res.end()
    this.#clients.clear()
  }
}
