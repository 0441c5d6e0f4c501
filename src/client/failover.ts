/**
 * Which failures move a call to the next gateway, and the loop that does it: gateways in order
 * (from the one that last answered), then round again after a backoff, until the caller's deadline
 * or signal. Whatever is retried is retried unchanged (the same job id, the same signed bytes), so
 * a call that reached a gateway before it died is never a second job or a second subscription.
 */
import * as grpc from '@grpc/grpc-js'
import { BACKOFF_INITIAL_MS, BACKOFF_MAX_MS } from './constants.ts'
import { ClientAbortedError, ClientClosedError, ClientDeadlineError, GatewaysUnavailableError, NoGatewaysError } from './errors.ts'
import { nodeRpc, type Call, type NodeRpc } from './rpc.ts'

/**
 * - `transient`: this gateway is down, cut off, stopping or busy: try the next one, and this one
 *   again next round.
 * - `skip`: this gateway cannot answer this call (it does not know the job, is not an archive, is an
 *   older version): try the others, but a round of nothing else ends the call with the error.
 * - `fatal`: the answer is the answer (bad request, permission denied, the job failed): no retry.
 */
export type Verdict = 'transient' | 'skip' | 'fatal'

/** The node's component error code, from the trailer the API puts on every mapped error. */
export function errorCode (err: unknown): string {
  const md = (err as { metadata?: grpc.Metadata }).metadata
  const v = md instanceof grpc.Metadata ? md.get('inframind-error-code')[0] : undefined
  return typeof v === 'string' ? v : ''
}

// What grpc-js reports when the connection under a call broke (a killed process, a reset).
const BROKEN_TRANSPORT = /RST_STREAM|stream removed|ECONNRESET|ECONNREFUSED|EPIPE|connection dropped|socket hang up|GOAWAY|Connection closed|http2|protocol error/i
/** A gateway that is only full: another may have room. */
const BUSY_CODES = new Set(['GATEWAY_FULL', 'QUEUE_FULL', 'RATE_LIMITED'])
/** A node without the role the call needs (no subscriptions coordinator, not an archive): others may have it. */
const NOT_HERE_CODES = new Set(['NO_SUBSCRIPTIONS', 'NOT_AN_ARCHIVE'])

/** The default verdict for any call; operations refine it (a read counts NOT_FOUND as `skip`). */
export function classify (err: unknown): Verdict {
  const e = err as Partial<grpc.ServiceError>
  if (typeof e.code !== 'number') return 'fatal'
  const details = e.details ?? e.message ?? ''
  if (NOT_HERE_CODES.has(errorCode(err))) return 'skip'
  switch (e.code) {
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED:
    // Not ours (our own cancel is told apart by the signal before this is asked): a server going away.
    case grpc.status.CANCELLED:
      return 'transient'
    case grpc.status.RESOURCE_EXHAUSTED:
      return BUSY_CODES.has(errorCode(err)) ? 'transient' : 'fatal'
    case grpc.status.INTERNAL:
    case grpc.status.UNKNOWN:
      return BROKEN_TRANSPORT.test(details) ? 'transient' : 'fatal'
    case grpc.status.UNIMPLEMENTED:
      return 'skip'
    default:
      return 'fatal'
  }
}

export interface AttemptOptions {
  /** Absolute end of the whole operation (unix ms). */
  deadlineAt: number
  signal?: AbortSignal
  /** Start with this gateway (the one a job was last seen at) instead of the last that answered. */
  prefer?: string
  /** Start with the gateway after this one (it just failed). */
  after?: string
  /** Refines `classify` for this operation. */
  classify?: (err: unknown) => Verdict
  /** Each failure that moves the call on (for logs and progress lines). */
  onFailover?: (address: string, err: Error) => void
}

export interface PoolOptions {
  gateways: string[]
  /** Asked for more gateways whenever a round has failed on every known one. */
  discover?: (signal: AbortSignal) => Promise<string[]>
  /** Bound of each unary call to one gateway. */
  callTimeoutMs: number
  maxMessageBytes?: number
}

export interface GatewayPool {
  /** The gateways known now, in the order they are tried. */
  addresses(): string[]
  rpc(address: string): NodeRpc
  /**
   * Runs `fn` on one gateway after another until one answers; resolves with its answer and address.
   * `fn` gets the per-call bound (the call timeout, within the deadline).
   */
  attempt<T>(what: string, fn: (rpc: NodeRpc, call: Call, address: string) => Promise<T>, opts: AttemptOptions): Promise<{ value: T, address: string }>
  /** Resolves after the backoff for `round` (1, 2, ...), early on abort; throws past the deadline or on abort. */
  pause(what: string, round: number, opts: { deadlineAt: number, signal?: AbortSignal }): Promise<void>
  /** Throws ClientAbortedError / ClientDeadlineError / ClientClosedError when the operation must stop. */
  check(what: string, opts: { deadlineAt: number, signal?: AbortSignal }, cause?: unknown): void
  close(): void
}

function normalise (list: string[]): string[] {
  return [...new Set(list.map((a) => a.trim()).filter((a) => a !== ''))]
}

export function backoffMs (round: number): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** Math.max(0, round - 1))
  // Jitter, so the clients of a gateway that died do not all come back at the same instant.
  return Math.round(base * (0.5 + Math.random() * 0.5))
}

export function gatewayPool (opts: PoolOptions): GatewayPool {
  let gateways = normalise(opts.gateways)
  const channels = new Map<string, NodeRpc>()
  let current = gateways[0]
  let closed = false
  const closing = new AbortController()

  const rpc = (address: string): NodeRpc => {
    if (closed) throw new ClientClosedError()
    let r = channels.get(address)
    if (r === undefined) {
      r = nodeRpc(address, { maxMessageBytes: opts.maxMessageBytes, closing: closing.signal })
      channels.set(address, r)
    }
    return r
  }

  const check = (what: string, o: { deadlineAt: number, signal?: AbortSignal }, cause?: unknown): void => {
    if (closed) throw new ClientClosedError()
    if (o.signal?.aborted === true) throw new ClientAbortedError(what, { cause: o.signal.reason })
    if (Date.now() >= o.deadlineAt) throw new ClientDeadlineError(what, cause !== undefined ? { cause } : undefined)
  }

  const order = (start: string | undefined, after: string | undefined): string[] => {
    const from = after !== undefined ? gateways.indexOf(after) + 1 : Math.max(0, start !== undefined ? gateways.indexOf(start) : 0)
    const i = ((from % gateways.length) + gateways.length) % gateways.length
    return [...gateways.slice(i), ...gateways.slice(0, i)]
  }

  const pause = async (what: string, round: number, o: { deadlineAt: number, signal?: AbortSignal }): Promise<void> => {
    check(what, o)
    const ms = Math.min(backoffMs(round), Math.max(0, o.deadlineAt - Date.now()))
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        o.signal?.removeEventListener('abort', done)
        closing.signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      o.signal?.addEventListener('abort', done, { once: true })
      closing.signal.addEventListener('abort', done, { once: true })
    })
    check(what, o)
  }

  const discover = async (o: { deadlineAt: number, signal?: AbortSignal }): Promise<void> => {
    if (opts.discover === undefined) return
    const signals = [closing.signal, AbortSignal.timeout(Math.max(1, Math.min(opts.callTimeoutMs, o.deadlineAt - Date.now())))]
    if (o.signal !== undefined) signals.push(o.signal)
    const signal = AbortSignal.any(signals)
    try {
      // Bounded even when `discover` ignores its signal.
      const found = await Promise.race([
        opts.discover(signal),
        new Promise<never>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }))
      ])
      gateways = normalise([...gateways, ...found])
    } catch {
      // Discovery is a hint: the known gateways are still tried.
    }
  }

  return {
    addresses: () => [...gateways],
    rpc,
    check,
    pause,
    async attempt (what, fn, o) {
      const verdictOf = o.classify ?? classify
      const failures = new Map<string, Error>()
      // Past the deadline after gateways failed, the failures are the story; before any, the deadline is.
      const stopIfDone = (cause?: unknown): void => {
        try {
          check(what, o, cause)
        } catch (err) {
          if (err instanceof ClientDeadlineError && failures.size > 0) throw new GatewaysUnavailableError(failures, 'deadline exceeded', { cause: err })
          throw err
        }
      }
      if (gateways.length === 0) await discover(o)
      if (gateways.length === 0) throw new NoGatewaysError()
      for (let round = 1; ; round++) {
        let transient = false
        let lastSkip: Error | undefined
        for (const address of order(o.prefer ?? current, round === 1 ? o.after : undefined)) {
          stopIfDone()
          const call: Call = { deadlineAt: Math.min(o.deadlineAt, Date.now() + opts.callTimeoutMs), signal: o.signal }
          try {
            const value = await fn(rpc(address), call, address)
            current = address
            return { value, address }
          } catch (err) {
            // Our own cancel (the caller's signal, or close()) ends the operation, whatever grpc called it.
            if (closed || o.signal?.aborted === true) stopIfDone(err)
            const verdict = verdictOf(err)
            if (verdict === 'fatal') throw err
            failures.set(address, err as Error)
            if (verdict === 'transient') transient = true
            else lastSkip = err as Error
            o.onFailover?.(address, err as Error)
          }
        }
        if (!transient && lastSkip !== undefined) throw lastSkip
        await discover(o)
        try {
          await pause(what, round, o)
        } catch {
          stopIfDone()
        }
      }
    },
    close () {
      if (closed) return
      closed = true
      closing.abort()
      for (const r of channels.values()) r.close()
      channels.clear()
    }
  }
}
