/**
 * Subscriptions: recurring jobs on the Infernet Coordinator's model (docs/SUBSCRIPTIONS.md). An owner
 * signs a request; any coordinator takes it (delegated or not), runs `redundancy` jobs per interval
 * while it owns the subscription, accepts responses by the Coordinator's rules, seals each output to
 * the owner, and replicates every change as a signed SubscriptionEvent so another coordinator can take
 * over. State lives in the store section "subscriptions".
 */
import { signEnvelope, verifyEnvelope, type SignedEnvelope } from '../envelope/index.ts'
import { TypedEmitter } from '../events.ts'
import type { Identity } from '../identity/index.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import {
  decodeSubscriptionEvent, encodeSubscriptionEvent, PAYLOAD_TYPES,
  type Subscription, type SubscriptionEvent, type SubscriptionRequest, type SubscriptionResponse, type SubscriptionStatus
} from '../protocol/index.ts'
import type { JobStore } from '../store/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { Startable } from '../types.ts'
import { subscriptionBook, type HeldSubscription, type SubscriptionBook } from './book.ts'
import { DEFAULT_LIMITS, DEFAULT_TICK_MS, MAX_LIST, STATUS_INTERVALS, type SubscriptionLimits } from './constants.ts'
import { InvalidSubscriptionFilterError, ReplicationRefusedError, SubscriptionNotFoundError, SubscriptionsNotStartedError } from './errors.ts'
import { subscriptionMetrics, type SubscriptionMetrics, type SubscriptionStats } from './metrics.ts'
import { checkCancel, checkSubscriptionId, checkTerms, openCancel, openRequest } from './request.ts'
import { subscriptionRunner, type RunJob, type Runner } from './runner.ts'
import { watchResponses, type WatchEvents } from './watch.ts'
import { activeAtOf, intervalAt, lastInterval, SUBSCRIPTION_STATES, type RefusalCode, type SubscriptionState } from './rules.ts'

export * from './errors.ts'
export * from './rules.ts'
export * from './request.ts'
export { subscriptionBook, type SubscriptionBook, type HeldSubscription, type AcceptOutcome, type ApplyOutcome, type ListFilter } from './book.ts'
export { DEFAULT_LIMITS, DEFAULT_TICK_MS, SUBSCRIPTION_ID_DOMAIN, MAX_NONCE_CHARS, type SubscriptionLimits } from './constants.ts'
export type { RunJob, RunJobArgs, RunJobResult } from './runner.ts'
export type { SubscriptionStats } from './metrics.ts'

/** The store section subscriptions live in. */
export const SUBSCRIPTIONS_SECTION = 'subscriptions'

export interface SubscriptionsInit {
  /** A request is refused from expires_at + this; a cancel issued further than this in the future is refused. */
  maxClockSkewMs: number
  /** How often the runner looks at owned subscriptions (default DEFAULT_TICK_MS). */
  tickMs?: number
  /** A job's deadline when the request sets none (always capped at the end of its interval). */
  defaultDeadlineMs: number
  /** What a request may ask for (each missing key from DEFAULT_LIMITS). */
  limits?: Partial<SubscriptionLimits>
  /** The clock, unix ms (tests inject one; default Date.now). */
  now?: () => number
}

export interface SubscriptionsComponents {
  store: Pick<JobStore, 'section'>
  identity: Identity
  logger: Logger
  /** Registers inframind_subscriptions{state} and the inframind_subscription_* counters. */
  metrics?: Metrics
  /** Runs one job of one interval on the mesh (the lead's scheduler). */
  runJob: RunJob
  /** Whether this node runs the subscription now (rendezvous over live schedulers, computed by the lead). */
  owns: (subscriptionId: string) => boolean
  /** The coordinator that owns it now, for SubscriptionStatus.owner_scheduler (default: this node when owns(), else ''). */
  ownerOf?: (subscriptionId: string) => string | undefined
  /** Hands a signed SubscriptionEvent to the other coordinators; awaited before watchers see the change. */
  replicate?: (envelope: SignedEnvelope) => Promise<void> | void
  /** Keeps a lazy subscription's output by hash (best effort). */
  storeOutput?: (bytes: Uint8Array) => Promise<unknown> | unknown
  /** Whose replicated events are taken (default: nobody's). */
  isCoordinator?: (nodeId: string) => boolean
  /**
   * Throws (a typed error, e.g. GuardianRejectedError) when this node would not admit the request's
   * jobs for that owner: unknown containers, allowed_delegates, allowed_ips. Checked at creation.
   */
  admit?: (request: SubscriptionRequest, owner: string) => void
}

export interface ReplicatedOutcome {
  status: 'applied' | 'duplicate' | 'refused'
  /** Why it was refused: a rule code, or INVALID_EVENT. */
  code?: RefusalCode | 'INVALID_EVENT'
  reason?: string
}

export interface ListSubscriptionsFilter {
  /** Node-id form of the owner ('' or absent = all). */
  owner?: string
  /** One of SUBSCRIPTION_STATES ('' or absent = any). */
  state?: string
}

/** delivered: a response accepted here or replicated; changed: a subscription id created or cancelled; tick: a runner pass. */
export type SubscriptionsEvents = WatchEvents

export interface Subscriptions extends Startable {
  /** Takes the owner's signed request (from anyone); the same (owner, nonce) again returns the same subscription. */
  create(envelope: SignedEnvelope, opts?: { submittedBy?: string }): Promise<SubscriptionStatus>
  /** Takes the owner's signed cancel; NOT_SUBSCRIPTION_OWNER for anyone else's. */
  cancel(envelope: SignedEnvelope): Promise<SubscriptionStatus>
  get(id: string): Promise<SubscriptionStatus>
  list(filter?: ListSubscriptionsFilter): Promise<SubscriptionStatus[]>
  /** Responses from `fromInterval` (0 = only new ones), then each new one; ends when the subscription completes or is cancelled. */
  watch(id: string, fromInterval: number, signal?: AbortSignal): AsyncIterable<SubscriptionResponse>
  /** An event another coordinator signed: its signer must be a coordinator; applied by the same rules. */
  applyReplicated(envelope: SignedEnvelope): Promise<ReplicatedOutcome>
  /** One pass of the runner (it also runs every tickMs while started). */
  tick(): Promise<void>
  /** Resolves once every job launched so far has been judged. */
  settled(): Promise<void>
  stats(): SubscriptionStats
  on<K extends keyof SubscriptionsEvents>(name: K, listener: (value: SubscriptionsEvents[K]) => void): () => void
}

export function subscriptions (init: SubscriptionsInit) {
  return (components: SubscriptionsComponents): Subscriptions => new SubscriptionsComponent(init, components)
}

class SubscriptionsComponent implements Subscriptions {
  readonly #init: SubscriptionsInit
  readonly #c: SubscriptionsComponents
  readonly #log: Logger
  readonly #now: () => number
  readonly #limits: SubscriptionLimits
  readonly #events: TypedEmitter<SubscriptionsEvents>
  readonly #metrics: SubscriptionMetrics
  #book: SubscriptionBook | undefined
  #runner: Runner | undefined
  #timer: NodeJS.Timeout | undefined
  #ticking: Promise<void> | undefined
  #tickQueue: Promise<void> = Promise.resolve()
  /** Bumped by each start(), so a tick of a previous start never schedules the next one. */
  #generation = 0
  /** Responses accepted but not yet shown to watchers (replication first): a watch does not end over them. */
  readonly #publishing = new Map<string, number>()

  constructor (init: SubscriptionsInit, components: SubscriptionsComponents) {
    this.#init = init
    this.#c = components
    this.#log = components.logger.child({ component: 'subscriptions' })
    this.#now = init.now ?? Date.now
    this.#limits = { ...DEFAULT_LIMITS, ...init.limits }
    this.#events = new TypedEmitter(this.#log)
    this.#metrics = subscriptionMetrics(components.metrics, () => this.#countByState())
  }

  async start (): Promise<void> {
    if (this.#book !== undefined) return
    const book = subscriptionBook(this.#c.store.section(SUBSCRIPTIONS_SECTION))
    await book.load()
    this.#book = book
    this.#runner = subscriptionRunner({
      book,
      identity: this.#c.identity,
      logger: this.#log,
      metrics: this.#metrics,
      nowMs: this.#now,
      defaultDeadlineMs: this.#init.defaultDeadlineMs,
      runJob: this.#c.runJob,
      owns: this.#c.owns,
      storeOutput: this.#c.storeOutput,
      publishDelivered: async (r) => { await this.#publishDelivered(r) }
    })
    this.#log.info({ held: book.all().length }, 'subscriptions loaded')
    this.#loop(++this.#generation)
  }

  async stop (): Promise<void> {
    if (this.#book === undefined) return
    clearTimeout(this.#timer)
    this.#timer = undefined
    const runner = this.#runner
    this.#book = undefined
    this.#runner = undefined
    await this.#ticking
    await runner?.stop()
    // Wake watchers so they see the component is gone.
    this.#events.emit('tick', undefined)
  }

  #loop (generation: number): void {
    if (this.#book === undefined || generation !== this.#generation) return
    this.#ticking = this.tick()
      .catch((err: unknown) => { this.#log.error({ err }, 'subscription tick failed') })
      .finally(() => {
        if (this.#book !== undefined && generation === this.#generation) this.#timer = setTimeout(() => { this.#loop(generation) }, this.#init.tickMs ?? DEFAULT_TICK_MS)
      })
  }

  async tick (): Promise<void> {
    const { runner } = this.#started()
    // One pass at a time: the timer's and a caller's passes queue rather than interleave.
    const pass = this.#tickQueue.then(async () => { await runner.tick() })
    this.#tickQueue = pass.catch(() => {})
    await pass
    this.#events.emit('tick', undefined)
  }

  async settled (): Promise<void> {
    await this.#runner?.settled()
  }

  stats (): SubscriptionStats {
    return this.#metrics.stats()
  }

  on<K extends keyof SubscriptionsEvents> (name: K, listener: (value: SubscriptionsEvents[K]) => void): () => void {
    return this.#events.on(name, listener)
  }

  async create (envelope: SignedEnvelope, opts: { submittedBy?: string } = {}): Promise<SubscriptionStatus> {
    const { book } = this.#started()
    const opened = openRequest(envelope)
    // A replay of an accepted request is the same subscription, even past its expiry (EIP712Coordinator's order).
    const existing = book.get(opened.id)
    if (existing !== undefined) return await this.#status(existing)
    const nowS = this.#nowS()
    checkTerms(opened, { nowS, maxClockSkewMs: this.#init.maxClockSkewMs, limits: this.#limits })
    // Refused now, with the reason, rather than failing every interval later.
    this.#c.admit?.(opened.request, opened.owner)
    const subscription: Subscription = {
      id: opened.id,
      owner: opened.owner,
      request: copyEnvelope(envelope),
      createdAt: nowS,
      activeAt: activeAtOf(nowS, opened.request.period),
      cancel: null,
      cancelledAt: 0,
      acceptedBy: this.#c.identity.nodeId
    }
    const { held, created } = await book.create(subscription)
    if (created) {
      this.#log.info({ subscription: held.subscription.id, owner: held.subscription.owner, submittedBy: opts.submittedBy }, 'subscription created')
      await this.#publish({ created: held.subscription })
      this.#events.emit('changed', held.subscription.id)
    }
    return await this.#status(held)
  }

  async cancel (envelope: SignedEnvelope): Promise<SubscriptionStatus> {
    const { book, runner } = this.#started()
    const { cancel } = openCancel(envelope)
    const id = checkSubscriptionId(cancel.subscriptionId)
    const h = book.get(id)
    if (h === undefined) throw new SubscriptionNotFoundError(id)
    checkCancel(envelope, h.subscription, { nowMs: this.#now(), maxClockSkewMs: this.#init.maxClockSkewMs })
    const { held, changed } = await book.cancel(id, copyEnvelope(envelope), this.#nowS())
    if (changed) {
      runner.forget(id)
      this.#log.info({ subscription: id }, 'subscription cancelled')
      await this.#publish({ cancelled: held.subscription })
      this.#events.emit('changed', id)
    }
    return await this.#status(held)
  }

  async get (id: string): Promise<SubscriptionStatus> {
    const { book } = this.#started()
    const h = book.get(checkSubscriptionId(id))
    if (h === undefined) throw new SubscriptionNotFoundError(id)
    return await this.#status(h)
  }

  async list (filter: ListSubscriptionsFilter = {}): Promise<SubscriptionStatus[]> {
    const { book } = this.#started()
    const state = filter.state === undefined || filter.state === '' ? undefined : filter.state
    if (state !== undefined && !(SUBSCRIPTION_STATES as readonly string[]).includes(state)) {
      throw new InvalidSubscriptionFilterError(`state must be one of ${SUBSCRIPTION_STATES.join(', ')}`)
    }
    const owner = filter.owner === undefined || filter.owner === '' ? undefined : filter.owner
    const held = book.list({ owner, state: state as SubscriptionState | undefined }, this.#nowS()).slice(-MAX_LIST)
    return await Promise.all(held.map(async (h) => await this.#status(h)))
  }

  watch (id: string, fromInterval: number, signal?: AbortSignal): AsyncIterable<SubscriptionResponse> {
    const { book } = this.#started()
    return watchResponses({
      book,
      events: this.#events,
      nowS: () => this.#nowS(),
      live: () => this.#book === book,
      publishing: (sid) => this.#publishing.get(sid) ?? 0
    }, id, fromInterval, signal)
  }

  async applyReplicated (envelope: SignedEnvelope): Promise<ReplicatedOutcome> {
    const { book, runner } = this.#started()
    try {
      verifyEnvelope(envelope, { payloadType: PAYLOAD_TYPES.subscriptionEvent })
    } catch (err) {
      throw new ReplicationRefusedError('not a signed subscription event', { cause: err })
    }
    const signer = nodeIdFromPublicKey(envelope.publicKey)
    if (!(this.#c.isCoordinator?.(signer) ?? false)) throw new ReplicationRefusedError(`${signer} is not a coordinator`)
    let event: SubscriptionEvent
    try {
      event = decodeSubscriptionEvent(envelope.payload)
    } catch (err) {
      throw new ReplicationRefusedError('malformed event', { cause: err })
    }
    const outcome = await book.apply(event)
    if (outcome.status === 'refused') {
      this.#metrics.refused(outcome.code, 'replicated')
      this.#log.info({ signer, code: outcome.code, reason: outcome.reason }, 'replicated subscription event refused')
      return { status: 'refused', code: outcome.code, reason: outcome.reason }
    }
    if (outcome.status === 'applied') {
      const id = outcome.held.subscription.id
      if (outcome.response !== undefined) {
        this.#metrics.accepted('replicated')
        this.#events.emit('delivered', outcome.response)
      }
      if (outcome.held.subscription.cancelledAt > 0) runner.forget(id)
      this.#events.emit('changed', id)
    }
    return { status: outcome.status }
  }

  async #publishDelivered (response: SubscriptionResponse): Promise<void> {
    const id = response.subscriptionId
    this.#publishing.set(id, (this.#publishing.get(id) ?? 0) + 1)
    try {
      await this.#publish({ delivered: response })
    } finally {
      const n = (this.#publishing.get(id) ?? 1) - 1
      if (n === 0) this.#publishing.delete(id)
      else this.#publishing.set(id, n)
      this.#events.emit('delivered', response)
    }
  }

  /** Signs the event as this coordinator and hands it to replicate(); a failure is logged, never undoes the change. */
  async #publish (event: SubscriptionEvent): Promise<void> {
    if (this.#c.replicate === undefined) return
    try {
      await this.#c.replicate(signEnvelope(this.#c.identity, PAYLOAD_TYPES.subscriptionEvent, encodeSubscriptionEvent(event)))
    } catch (err) {
      this.#metrics.replicationFailed()
      this.#log.warn({ err }, 'subscription event not replicated')
    }
  }

  async #status (h: HeldSubscription): Promise<SubscriptionStatus> {
    const book = this.#started().book
    const nowS = this.#nowS()
    const id = h.subscription.id
    const current = intervalAt(h.terms.activeAt, h.terms.period, nowS)
    const newest = Math.min(current, lastInterval(h.terms))
    return {
      subscription: h.subscription,
      state: book.state(h, nowS),
      currentInterval: current,
      responses: newest < 1 ? [] : await book.responses(id, Math.max(1, newest - STATUS_INTERVALS + 1)),
      ownerScheduler: this.#c.ownerOf?.(id) ?? (this.#c.owns(id) ? this.#c.identity.nodeId : '')
    }
  }

  #countByState (): Record<SubscriptionState, number> {
    const counts: Record<SubscriptionState, number> = { pending: 0, active: 0, completed: 0, cancelled: 0 }
    const book = this.#book
    if (book === undefined) return counts
    const nowS = this.#nowS()
    for (const h of book.all()) counts[book.state(h, nowS)]++
    return counts
  }

  #nowS (): number {
    return Math.floor(this.#now() / 1000)
  }

  #started (): { book: SubscriptionBook, runner: Runner } {
    if (this.#book === undefined || this.#runner === undefined) throw new SubscriptionsNotStartedError()
    return { book: this.#book, runner: this.#runner }
  }
}

/** The four envelope fields only (a gRPC-decoded object may carry more), bytes copied. */
function copyEnvelope (e: SignedEnvelope): SignedEnvelope {
  return { payloadType: e.payloadType, payload: new Uint8Array(e.payload), publicKey: new Uint8Array(e.publicKey), signature: new Uint8Array(e.signature) }
}
