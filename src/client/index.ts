/**
 * The inframind client library for programs: jobs and subscriptions through any of several gateways,
 * with failover that never turns one job into two, and archive lookups.
 *
 *   const client = inframindClient({ gateways: ['10.0.0.1:9000', '10.0.0.2:9000'] })
 *   const job = await client.run({ containers: ['echo'], input: new TextEncoder().encode('hi') }, { signal })
 *   client.close()
 */
import type { Identity } from '../identity/types.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { ListRecordsResponse, RecordReply, SubscriptionResponse, SubscriptionStatus } from '../protocol/generated.ts'
import { DEFAULT_CALL_TIMEOUT_MS, DEFAULT_OPERATION_TIMEOUT_MS } from './constants.ts'
import { classify, gatewayPool, type Verdict } from './failover.ts'
import { deadlineOf, jobsClient, notFoundSkips, type JobsClient, type OperationOptions } from './jobs.ts'
import { archiveVerdict, checkRecord, listRequest, recordRef, type RecordFilter, type RecordRef } from './records.ts'
import { signSubscriptionCancel, signSubscriptionRequest, type SubscriptionSpec } from './subscriptions.ts'

export * from './errors.ts'
export * from './constants.ts'
export { classify, errorCode, backoffMs, type Verdict } from './failover.ts'
export { newJobId, isTerminal, type ClientJobEvent, type OperationOptions, type SubmitResult, type JobsClient } from './jobs.ts'
export type { JobSpec } from './rpc.ts'
export { recordRef, type RecordFilter, type RecordRef } from './records.ts'
export {
  subscriptionRequest, signSubscriptionRequest, signSubscriptionCancel, openSubscriptionRequest, openSubscriptionCancel,
  openSubscriptionOutput, subscriptionOutputContext, subscriptionIdOf, type SubscriptionSpec
} from './subscriptions.ts'
export type { Job, JobEvent, SubscriptionStatus, SubscriptionResponse, RecordReply, ListRecordsResponse } from '../protocol/generated.ts'

export interface InframindClientInit {
  /** Gateways as host:port, tried in this order (starting from the one that last answered). */
  gateways: string[]
  /**
   * More gateways, asked whenever every known one has failed in a round (e.g. from a directory or a
   * node's ListPeers). What it returns is added to the list; a failure is ignored.
   */
  discover?: (signal: AbortSignal) => Promise<string[]>
  /** Bound of each call to one gateway (default 10 s); a whole operation's bound is its own `timeoutMs`. */
  timeoutMs?: number
  /** Largest message sent or received (default 64 MiB, as the node's default). */
  maxMessageBytes?: number
  /** WatchJob silence after which the gateway is probed with GetJob (default 5 s). */
  watchProbeMs?: number
}

export interface WatchSubscriptionOptions {
  signal?: AbortSignal
  /** The whole watch (default: until the subscription ends or the signal fires). */
  timeoutMs?: number
  onFailover?: (address: string, err: Error) => void
}

export interface InframindClient extends JobsClient {
  /** Signs the owner's request and creates the subscription; the same (owner, nonce) again is the same subscription. */
  createSubscription(owner: Identity, spec: SubscriptionSpec, opts?: OperationOptions): Promise<SubscriptionStatus>
  /** Creates a subscription from a request the owner signed earlier (a delegated request: anyone may send it). */
  createSignedSubscription(request: SignedEnvelope, opts?: OperationOptions): Promise<SubscriptionStatus>
  cancelSubscription(owner: Identity, id: string, opts?: OperationOptions): Promise<SubscriptionStatus>
  getSubscription(id: string, opts?: OperationOptions): Promise<SubscriptionStatus>
  listSubscriptions(filter?: { owner?: string, state?: string }, opts?: OperationOptions): Promise<SubscriptionStatus[]>
  /**
   * Each accepted response from `fromInterval` on (0 = only new ones), each once, across gateway
   * failovers (a new gateway is asked to replay from the last interval seen); ends when the
   * subscription completes or is cancelled.
   */
  watchSubscription(id: string, fromInterval?: number, opts?: WatchSubscriptionOptions): AsyncIterable<SubscriptionResponse>
  /** The newest receipt for a job id, or a receipt record by hash, from an archive. */
  getReceipt(ref: RecordRef, opts?: OperationOptions): Promise<RecordReply>
  getCertificate(ref: RecordRef, opts?: OperationOptions): Promise<RecordReply>
  /** One page; pass `nextPageToken` back as `pageToken` for the next ("" = no more). */
  listRecords(filter?: RecordFilter, opts?: OperationOptions): Promise<ListRecordsResponse>
  /** The gateways known now, in the order they are tried. */
  gateways(): string[]
  /** Closes every channel; calls after it fail with ClientClosedError, and waits in progress end. Idempotent. */
  close(): void
}

const readVerdict = (extra: (err: unknown) => Verdict | undefined) => (err: unknown): Verdict => extra(err) ?? classify(err)

export function inframindClient (init: InframindClientInit): InframindClient {
  const callTimeoutMs = init.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS
  const pool = gatewayPool({ gateways: init.gateways, discover: init.discover, callTimeoutMs, maxMessageBytes: init.maxMessageBytes })
  const jobs = jobsClient(pool, { callTimeoutMs, probeMs: init.watchProbeMs })
  const bounds = (o: OperationOptions = {}): { deadlineAt: number, signal?: AbortSignal, onFailover?: OperationOptions['onFailover'] } =>
    ({ deadlineAt: deadlineOf(o, DEFAULT_OPERATION_TIMEOUT_MS), signal: o.signal, onFailover: o.onFailover })

  const create = async (env: SignedEnvelope, o?: OperationOptions): Promise<SubscriptionStatus> =>
    (await pool.attempt('create subscription', async (rpc, call) => await rpc.createSubscription(env, call), bounds(o))).value

  async function * watchSubscription (id: string, fromInterval = 0, o: WatchSubscriptionOptions = {}): AsyncIterable<SubscriptionResponse> {
    const what = `watch subscription ${id}`
    const b = { deadlineAt: o.timeoutMs !== undefined ? Date.now() + o.timeoutMs : Number.POSITIVE_INFINITY, signal: o.signal }
    // Replays overlap after a failover (from the last interval seen): each (interval, index) is yielded once.
    const seen = new Set<string>()
    let from = fromInterval
    let failed: string | undefined
    let startInterval: number | undefined
    for (let round = 1; ; round++) {
      // Any gateway that knows the subscription will do; its state says whether there is more to wait for.
      const { value: status, address } = await pool.attempt(what, async (rpc, call) => await rpc.getSubscription(id, call), {
        ...b, after: failed, classify: notFoundSkips, onFailover: o.onFailover
      })
      // "Only new ones" (0) cannot be asked again after a break without losing what came meanwhile:
      // a reconnect replays from the interval that was current when the watch began.
      startInterval ??= status.currentInterval
      if (from === 0 && failed !== undefined) from = Math.max(1, startInterval)
      try {
        for await (const r of pool.rpc(address).watchSubscription(id, from, b)) {
          round = 1
          const key = `${r.interval}:${r.index}`
          if (seen.has(key)) continue
          seen.add(key)
          if (r.interval > from) {
            // Intervals before the one now being replayed from never come again: forget them, so a long watch holds little.
            for (const k of seen) if (Number(k.split(':')[0]) < r.interval) seen.delete(k)
            seen.add(key)
            from = r.interval
          }
          yield r
        }
        // The stream ends when the subscription does; a gateway that closed it early is asked again.
        if (status.state === 'completed' || status.state === 'cancelled') return
        const now = (await pool.attempt(what, async (rpc, call) => await rpc.getSubscription(id, call), { ...b, prefer: address, classify: notFoundSkips })).value
        if (now.state === 'completed' || now.state === 'cancelled') return
        failed = undefined
      } catch (err) {
        pool.check(what, b, err)
        if (classify(err) === 'fatal') throw err
        o.onFailover?.(address, err as Error)
        failed = address
      }
      await pool.pause(what, round, b)
    }
  }

  const record = (method: 'getReceipt' | 'getCertificate') => async (ref: RecordRef, o?: OperationOptions): Promise<RecordReply> => {
    const r = recordRef(ref)
    const { value, address } = await pool.attempt(`${method === 'getReceipt' ? 'receipt' : 'certificate'} ${r.jobId ?? r.hash ?? ''}`,
      async (rpc, call) => await rpc[method](r, call), { ...bounds(o), classify: readVerdict(archiveVerdict) })
    return checkRecord(value, address)
  }

  return {
    ...jobs,
    createSubscription: async (owner, spec, o) => await create(signSubscriptionRequest(owner, spec), o),
    createSignedSubscription: create,
    cancelSubscription: async (owner, id, o) => {
      const env = signSubscriptionCancel(owner, id)
      // The same signed cancel to each gateway (a repeat is harmless); one that has not heard of the subscription yet is not the last word.
      return (await pool.attempt(`cancel subscription ${id}`, async (rpc, call) => await rpc.cancelSubscription(env, call), { ...bounds(o), classify: notFoundSkips })).value
    },
    getSubscription: async (id, o) =>
      (await pool.attempt(`get subscription ${id}`, async (rpc, call) => await rpc.getSubscription(id, call), { ...bounds(o), classify: notFoundSkips })).value,
    listSubscriptions: async (filter = {}, o) =>
      (await pool.attempt('list subscriptions', async (rpc, call) => await rpc.listSubscriptions(filter, call), bounds(o))).value,
    watchSubscription,
    getReceipt: record('getReceipt'),
    getCertificate: record('getCertificate'),
    listRecords: async (filter = {}, o) => {
      const { value, address } = await pool.attempt('list records', async (rpc, call) => await rpc.listRecords(listRequest(filter), call), {
        ...bounds(o), classify: readVerdict(archiveVerdict)
      })
      return { records: value.records.map((r) => checkRecord(r, address)), nextPageToken: value.nextPageToken }
    },
    gateways: () => pool.addresses(),
    close: () => pool.close()
  }
}
