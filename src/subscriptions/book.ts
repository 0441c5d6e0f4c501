/**
 * The subscriptions a coordinator holds and the responses accepted for them, in its own LevelDB
 * section. Every subscription is also held in memory (the runner walks them each tick); responses
 * are read from the store. Writes go through one queue, so a check and the write it allows are never
 * interleaved with another write: two responses racing for the last place of an interval cannot both
 * get it.
 *
 * Keys:  s!<id>                                   -> Subscription
 *        r!<id>!<interval, 10 digits>!<node id>    -> SubscriptionResponse (one per node per interval)
 */
import { sameBytes, verifyReceipt } from '../receipt/index.ts'
import {
  decodeSubscription, decodeSubscriptionResponse, encodeSubscription, encodeSubscriptionResponse,
  type Subscription, type SubscriptionEvent, type SubscriptionRequest, type SubscriptionResponse
} from '../protocol/index.ts'
import type { StoreSection } from '../store/types.ts'
import { SubscriptionNotFoundError } from './errors.ts'
import { checkCancel, openRequest } from './request.ts'
import {
  activeAtOf, checkReplicatedResponse, checkResponse, lastInterval, stateAt,
  type RefusalCode, type SubscriptionState, type SubscriptionTerms
} from './rules.ts'

export interface HeldSubscription {
  subscription: Subscription
  /** The owner's request, decoded from subscription.request. */
  request: SubscriptionRequest
  terms: SubscriptionTerms
  /** Responses accepted for the last interval (how a subscription completes before its time runs out). */
  deliveredInLast: number
}

export type AcceptOutcome =
  | { accepted: true, response: SubscriptionResponse }
  | { accepted: false, code: RefusalCode }

export type ApplyOutcome =
  | { status: 'applied' | 'duplicate', held: HeldSubscription, response?: SubscriptionResponse, superseded?: SubscriptionResponse[] }
  | { status: 'refused', code: RefusalCode | 'INVALID_EVENT', reason: string }

export interface ListFilter {
  owner?: string
  state?: SubscriptionState
}

export interface SubscriptionBook {
  /** Reads every subscription into memory; call once the store is started. */
  load(): Promise<void>
  get(id: string): HeldSubscription | undefined
  all(): HeldSubscription[]
  state(held: HeldSubscription, nowS: number): SubscriptionState
  /** Oldest first (by creation, then id). */
  list(filter: ListFilter, nowS: number): HeldSubscription[]
  /** Stores a new subscription; the same id again returns the one held (created: false), never a second. */
  create(subscription: Subscription): Promise<{ held: HeldSubscription, created: boolean }>
  /** Marks it cancelled with the owner's signed cancel (checked by the caller); cancelling twice changes nothing. */
  cancel(id: string, cancel: NonNullable<Subscription['cancel']>, cancelledAt: number): Promise<{ held: HeldSubscription, changed: boolean }>
  /** Applies the Coordinator's rules at `nowS`; stores the response with its index when accepted. */
  accept(response: SubscriptionResponse, nowS: number): Promise<AcceptOutcome>
  /** Responses of one interval, in acceptance order. */
  delivered(id: string, interval: number): Promise<SubscriptionResponse[]>
  /** Responses from `fromInterval` (>= 1) on, by interval then index. */
  responses(id: string, fromInterval: number): Promise<SubscriptionResponse[]>
  /** An event another coordinator recorded (its signature checked by the caller); idempotent. */
  apply(event: SubscriptionEvent): Promise<ApplyOutcome>
}

const pad = (n: number): string => String(n).padStart(10, '0')
const subKey = (id: string): string => `s!${id}`
const intervalPrefix = (id: string, interval: number): string => `r!${id}!${pad(interval)}!`
const responseKey = (r: SubscriptionResponse): string => `${intervalPrefix(r.subscriptionId, r.interval)}${r.nodeId}`
// '"' is the byte after '!': the end of every key that starts `r!<id>!`.
const responsesEnd = (id: string): string => `r!${id}"`

function hold (subscription: Subscription, deliveredInLast = 0): HeldSubscription {
  if (subscription.request === null) throw new TypeError(`subscription ${subscription.id} has no request`)
  const request = openRequest(subscription.request).request
  return {
    subscription,
    request,
    terms: {
      activeAt: subscription.activeAt,
      period: request.period,
      frequency: request.frequency,
      redundancy: request.redundancy,
      cancelledAt: subscription.cancelledAt
    },
    deliveredInLast
  }
}

const byAge = (a: HeldSubscription, b: HeldSubscription): number =>
  a.subscription.createdAt - b.subscription.createdAt || (a.subscription.id < b.subscription.id ? -1 : 1)

/** Acceptance time, then node id, then job id: a total order every scheduler computes alike. */
export function firstAccepted (a: SubscriptionResponse, b: SubscriptionResponse): number {
  return a.acceptedAtMs - b.acceptedAtMs || (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0) || (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0)
}

export function subscriptionBook (section: StoreSection): SubscriptionBook {
  const held = new Map<string, HeldSubscription>()
  let queue: Promise<unknown> = Promise.resolve()

  /** Runs `fn` after every write queued before it; a failure does not stop the queue. */
  function serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn, fn)
    queue = run.catch(() => {})
    return run
  }

  async function delivered (id: string, interval: number): Promise<SubscriptionResponse[]> {
    const prefix = intervalPrefix(id, interval)
    const out: SubscriptionResponse[] = []
    for await (const [, v] of section.entries({ gte: prefix, lt: `${prefix.slice(0, -1)}"` })) out.push(decodeSubscriptionResponse(v))
    return out.sort((a, b) => a.index - b.index)
  }

  async function putSubscription (h: HeldSubscription): Promise<void> {
    await section.put(subKey(h.subscription.id), encodeSubscription(h.subscription))
    held.set(h.subscription.id, h)
  }

  async function storeResponse (h: HeldSubscription, response: SubscriptionResponse): Promise<void> {
    await section.put(responseKey(response), encodeSubscriptionResponse(response))
    if (response.interval === lastInterval(h.terms)) h.deliveredInLast++
  }

  /** A subscription from another coordinator: its request must be the owner's and name this id. */
  function verifiedCopy (s: Subscription): HeldSubscription {
    if (s.request === null) throw new TypeError('no request')
    const opened = openRequest(s.request)
    if (opened.id !== s.id) throw new TypeError(`the request names subscription ${opened.id}`)
    if (opened.owner !== s.owner) throw new TypeError('owner is not the request\'s signer')
    // Derived again rather than trusted: every coordinator computes intervals from the same activeAt.
    return hold({ ...s, activeAt: activeAtOf(s.createdAt, opened.request.period), cancel: null, cancelledAt: 0 })
  }

  /** Two coordinators took the same request: all converge on the earliest acceptance (then the smaller node id). */
  async function adoptCreated (incoming: HeldSubscription): Promise<ApplyOutcome> {
    const mine = held.get(incoming.subscription.id)
    if (mine === undefined) {
      await putSubscription(incoming)
      return { status: 'applied', held: incoming }
    }
    const a = incoming.subscription
    const b = mine.subscription
    if (a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.acceptedBy >= b.acceptedBy)) return { status: 'duplicate', held: mine }
    const merged = hold({ ...a, cancel: b.cancel, cancelledAt: b.cancelledAt }, mine.deliveredInLast)
    await putSubscription(merged)
    return { status: 'applied', held: merged }
  }

  async function applyDelivered (r: SubscriptionResponse): Promise<ApplyOutcome> {
    const h = held.get(r.subscriptionId)
    const refusal = invalidResponse(r)
    if (refusal !== undefined) return { status: 'refused', code: 'INVALID_EVENT', reason: refusal }
    const already = await delivered(r.subscriptionId, r.interval)
    const same = already.find((d) => d.nodeId === r.nodeId)
    if (same !== undefined && h !== undefined && same.jobId === r.jobId && sameBytes(same.outputHash, r.outputHash)) return { status: 'duplicate', held: h, response: same }
    const code = checkReplicatedResponse(h?.terms, already.map((d) => d.nodeId), { interval: r.interval, nodeId: r.nodeId, acceptedAtS: Math.floor(r.acceptedAtMs / 1000) })
    if (h !== undefined && (code === 'INTERVAL_COMPLETED' || code === 'NODE_RESPONDED_ALREADY')) return await converge(h, already, r, code)
    if (code !== null || h === undefined) return { status: 'refused', code: code ?? 'SUBSCRIPTION_NOT_FOUND', reason: code ?? 'unknown subscription' }
    await storeResponse(h, r)
    return { status: 'applied', held: h, response: r }
  }

  /**
   * An interval already full (or already answered by that node) meets another scheduler's response:
   * two owners recorded it, e.g. on the two sides of a split mesh. Every scheduler keeps the same
   * responses whatever order the events reach it in: one per node (its earliest), then the first
   * `redundancy` in the order `firstAccepted`. The newcomer either replaces the ones it beats
   * (`superseded`) or is refused with the rule's code.
   */
  async function converge (h: HeldSubscription, already: SubscriptionResponse[], r: SubscriptionResponse, code: RefusalCode): Promise<ApplyOutcome> {
    const earliest = new Map<string, SubscriptionResponse>()
    for (const d of [...already, r].sort(firstAccepted)) if (!earliest.has(d.nodeId)) earliest.set(d.nodeId, d)
    const kept = [...earliest.values()].slice(0, h.terms.redundancy)
    if (!kept.includes(r)) return { status: 'refused', code, reason: code }
    const superseded = already.filter((d) => !kept.includes(d))
    const last = r.interval === lastInterval(h.terms)
    // A superseded response of r's own node shares its key: the put replaces it.
    await section.batch([
      ...superseded.filter((d) => d.nodeId !== r.nodeId).map((d) => ({ type: 'del' as const, key: responseKey(d) })),
      { type: 'put' as const, key: responseKey(r), value: encodeSubscriptionResponse(r) }
    ])
    if (last) h.deliveredInLast += 1 - superseded.length
    return { status: 'applied', held: h, response: r, superseded }
  }

  return {
    async load () {
      held.clear()
      for await (const [, v] of section.entries({ gte: 's!', lt: 's"' })) {
        const h = hold(decodeSubscription(v))
        h.deliveredInLast = (await delivered(h.subscription.id, lastInterval(h.terms))).length
        held.set(h.subscription.id, h)
      }
    },

    get: (id) => held.get(id),
    all: () => [...held.values()],
    state: (h, nowS) => stateAt(h.terms, nowS, h.deliveredInLast),

    list (filter, nowS) {
      return [...held.values()]
        .filter((h) => (filter.owner === undefined || h.subscription.owner === filter.owner) &&
          (filter.state === undefined || stateAt(h.terms, nowS, h.deliveredInLast) === filter.state))
        .sort(byAge)
    },

    create: async (subscription) => await serial(async () => {
      const existing = held.get(subscription.id)
      if (existing !== undefined) return { held: existing, created: false }
      const h = hold(subscription)
      await putSubscription(h)
      return { held: h, created: true }
    }),

    cancel: async (id, cancel, cancelledAt) => await serial(async () => {
      const h = held.get(id)
      if (h === undefined) throw new SubscriptionNotFoundError(id)
      if (h.subscription.cancelledAt > 0) return { held: h, changed: false }
      const next = { ...h, subscription: { ...h.subscription, cancel, cancelledAt }, terms: { ...h.terms, cancelledAt } }
      await putSubscription(next)
      return { held: next, changed: true }
    }),

    accept: async (response, nowS) => await serial(async (): Promise<AcceptOutcome> => {
      const h = held.get(response.subscriptionId)
      const already = h === undefined ? [] : await delivered(response.subscriptionId, response.interval)
      const code = checkResponse(h?.terms, already.map((d) => d.nodeId), { interval: response.interval, nodeId: response.nodeId, nowS })
      if (code !== null || h === undefined) return { accepted: false, code: code ?? 'SUBSCRIPTION_NOT_FOUND' }
      // Its place among the interval's responses, as the SDK's numRedundantDeliveries + 1.
      const stored = { ...response, index: already.length + 1 }
      await storeResponse(h, stored)
      return { accepted: true, response: stored }
    }),

    delivered,

    async responses (id, fromInterval) {
      const out: SubscriptionResponse[] = []
      for await (const [, v] of section.entries({ gte: intervalPrefix(id, Math.max(1, fromInterval)), lt: responsesEnd(id) })) out.push(decodeSubscriptionResponse(v))
      return out.sort((a, b) => a.interval - b.interval || a.index - b.index)
    },

    apply: async (event) => await serial(async (): Promise<ApplyOutcome> => {
      // A oneof: the member set is an object, the others absent (undefined or null, by decoder).
      const kind = event.created != null ? 'created' : event.cancelled != null ? 'cancelled' : event.delivered != null ? 'delivered' : undefined
      try {
        if (kind === 'created') return await adoptCreated(verifiedCopy(event.created as Subscription))
        if (kind === 'cancelled') {
          const s = event.cancelled as Subscription
          if (s.cancel === null || s.cancelledAt === 0) throw new TypeError('a cancelled event without its cancel')
          checkCancel(s.cancel, s)
          // Self-contained: a cancel that overtakes its subscription's creation creates it first.
          const adopted = await adoptCreated(verifiedCopy(s))
          const h = adopted.status === 'refused' ? undefined : adopted.held
          if (h === undefined) return adopted
          if (h.subscription.cancelledAt > 0 && h.subscription.cancelledAt <= s.cancelledAt) return { status: 'duplicate', held: h }
          const next = { ...h, subscription: { ...h.subscription, cancel: s.cancel, cancelledAt: s.cancelledAt }, terms: { ...h.terms, cancelledAt: s.cancelledAt } }
          await putSubscription(next)
          return { status: 'applied', held: next }
        }
        if (kind === 'delivered') return await applyDelivered(event.delivered as SubscriptionResponse)
      } catch (err) {
        return { status: 'refused', code: 'INVALID_EVENT', reason: err instanceof Error ? err.message : String(err) }
      }
      return { status: 'refused', code: 'INVALID_EVENT', reason: 'the event names no created, cancelled or delivered subscription' }
    })
  }
}

/** A response that could not have been accepted by any coordinator, whatever the subscription. */
function invalidResponse (r: SubscriptionResponse): string | undefined {
  if (r.nodeId === '' || r.jobId === '') return 'node_id and job_id are required'
  if (r.receipt === null) return 'no receipt'
  const v = verifyReceipt(r.receipt)
  if (!v.valid) return `receipt: ${v.reason}`
  if (v.receipt.workerId !== r.nodeId) return 'the receipt is not signed by node_id'
  if (v.receipt.jobId !== r.jobId) return 'the receipt is for another job'
  if (!sameBytes(v.receipt.outputHash, r.outputHash)) return 'output_hash is not the receipt\'s'
  return undefined
}
