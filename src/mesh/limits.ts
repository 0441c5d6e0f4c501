/**
 * Rate limits per peer, cheap enough to run before anything is decoded or verified: token buckets
 * keyed by author (gossip) or peer (fetch), in maps whose size is bounded whoever sends.
 */
import type { TopicName } from '../protocol/constants.ts'
import {
  FLOOD_WINDOW_MS, HEARTBEAT_BURST, HEARTBEAT_FLOOD_EXCESS, HEARTBEAT_MAX_INTERVAL_MS, HEARTBEAT_MIN_INTERVAL_MS,
  HEARTBEAT_REFILLS_PER_INTERVAL, JOB_TOPIC_BURST, JOB_TOPIC_FLOOD_EXCESS, JOB_TOPIC_PER_SECOND, MAX_RATE_TRACKED_AUTHORS,
  ROSTER_TOPIC_BURST, ROSTER_TOPIC_FLOOD_EXCESS, ROSTER_TOPIC_PER_SECOND,
  DISPUTE_TOPIC_BURST, DISPUTE_TOPIC_FLOOD_EXCESS, DISPUTE_TOPIC_PER_SECOND
} from './constants.ts'

interface Bucket { tokens: number, atMs: number }

/** Refills `bucket` up to `burst` at `perMs` tokens per ms since it was last used, then takes one token if there is one. */
function take (bucket: Bucket, burst: number, perMs: number, now: number): boolean {
  bucket.tokens = Math.min(burst, bucket.tokens + Math.max(0, now - bucket.atMs) * perMs)
  bucket.atMs = now
  if (bucket.tokens < 1) return false
  bucket.tokens -= 1
  return true
}

/** A Map used as an LRU: get() moves the entry to the newest end, set() evicts the oldest past `max`. */
class Lru<V> {
  readonly #max: number
  readonly #map = new Map<string, V>()

  constructor (max: number) {
    this.#max = max
  }

  get size (): number {
    return this.#map.size
  }

  get (key: string): V | undefined {
    const v = this.#map.get(key)
    if (v !== undefined) {
      this.#map.delete(key)
      this.#map.set(key, v)
    }
    return v
  }

  set (key: string, v: V): void {
    this.#map.delete(key)
    this.#map.set(key, v)
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as string)
  }
}

export interface RateSpec {
  /** Tokens refilled per second. */
  perSecond: number
  /** Bucket size: how many may come at once after a quiet spell. */
  burst: number
  /** Keys tracked; the least recently seen is forgotten first (it starts again with a full bucket). */
  maxKeys: number
}

/** Token buckets by key (a peer, a caller's IP): `take` says whether one more request fits its rate. */
export class KeyedRateLimiter {
  readonly #spec: RateSpec
  readonly #buckets: Lru<Bucket>

  constructor (spec: RateSpec) {
    this.#spec = spec
    this.#buckets = new Lru(spec.maxKeys)
  }

  /** Keys currently tracked (never more than maxKeys). */
  get size (): number {
    return this.#buckets.size
  }

  take (key: string, now = Date.now()): boolean {
    let b = this.#buckets.get(key)
    if (b === undefined) {
      b = { tokens: this.#spec.burst, atMs: now }
      this.#buckets.set(key, b)
    }
    return take(b, this.#spec.burst, this.#spec.perSecond / 1000, now)
  }
}

/** One topic's limit per author; `perSecond: 'heartbeat'` follows the author's own heartbeat interval. */
export interface TopicLimit {
  perSecond: number | 'heartbeat'
  burst: number
  /** Over-rate messages of its own an author may send within FLOOD_WINDOW_MS before they count as flooding. */
  floodExcess: number
}

const JOB_TOPIC: TopicLimit = { perSecond: JOB_TOPIC_PER_SECOND, burst: JOB_TOPIC_BURST, floodExcess: JOB_TOPIC_FLOOD_EXCESS }

/** Every topic's limit (the mapped type makes a topic without one fail to compile). Values and reasons: constants.ts. */
export const GOSSIP_LIMITS: { [K in TopicName]: TopicLimit } = {
  heartbeats: { perSecond: 'heartbeat', burst: HEARTBEAT_BURST, floodExcess: HEARTBEAT_FLOOD_EXCESS },
  assignments: JOB_TOPIC,
  acks: JOB_TOPIC,
  receipts: JOB_TOPIC,
  attestations: JOB_TOPIC,
  roster: { perSecond: ROSTER_TOPIC_PER_SECOND, burst: ROSTER_TOPIC_BURST, floodExcess: ROSTER_TOPIC_FLOOD_EXCESS },
  disputes: { perSecond: DISPUTE_TOPIC_PER_SECOND, burst: DISPUTE_TOPIC_BURST, floodExcess: DISPUTE_TOPIC_FLOOD_EXCESS }
}

/** OK: within the rate. RATE_LIMITED: over it (IGNORE). FLOODING: far over it, sent by the author itself (REJECT). */
export type RateOutcome = 'OK' | 'RATE_LIMITED' | 'FLOODING'

interface TopicState extends Bucket {
  /** Over-rate messages the author sent itself in the current window, and when that window began. */
  over: number
  overSinceMs: number
}

export interface GossipLimiterInit {
  /** interval_ms of the author's last accepted heartbeat (undefined when none was). */
  heartbeatIntervalOf: (author: string) => number | undefined
  maxAuthors?: number
  limits?: { [K in TopicName]: TopicLimit }
}

/**
 * Per author, per topic rate of gossip messages, checked on gossipsub's author before the message
 * is decoded. Gossipsub drops copies of a message before validation, so each distinct message
 * takes one token, however many paths it came by.
 */
export class GossipLimiter {
  readonly #authors: Lru<Partial<Record<TopicName, TopicState>>>
  readonly #intervalOf: (author: string) => number | undefined
  readonly #limits: { [K in TopicName]: TopicLimit }

  constructor (init: GossipLimiterInit) {
    this.#authors = new Lru(init.maxAuthors ?? MAX_RATE_TRACKED_AUTHORS)
    this.#intervalOf = init.heartbeatIntervalOf
    this.#limits = init.limits ?? GOSSIP_LIMITS
  }

  /** Authors currently tracked (never more than maxAuthors). */
  get size (): number {
    return this.#authors.size
  }

  /**
   * Takes one token for a message by `author` on `topic`. `fromAuthor`: the peer that delivered it
   * is its author (only then can over-rate messages become FLOODING: a forwarder sends on only what
   * it accepted, so punishing it for another node's rate would punish the honest).
   */
  check (topic: TopicName, author: string, fromAuthor: boolean, now = Date.now()): RateOutcome {
    const limit = this.#limits[topic]
    let topics = this.#authors.get(author)
    if (topics === undefined) {
      topics = {}
      this.#authors.set(author, topics)
    }
    let state = topics[topic]
    if (state === undefined) {
      state = { tokens: limit.burst, atMs: now, over: 0, overSinceMs: now }
      topics[topic] = state
    }
    if (take(state, limit.burst, this.#perMs(limit, author), now)) return 'OK'
    if (!fromAuthor) return 'RATE_LIMITED'
    if (now - state.overSinceMs > FLOOD_WINDOW_MS) {
      state.over = 0
      state.overSinceMs = now
    }
    state.over += 1
    return state.over > limit.floodExcess ? 'FLOODING' : 'RATE_LIMITED'
  }

  #perMs (limit: TopicLimit, author: string): number {
    if (limit.perSecond !== 'heartbeat') return limit.perSecond / 1000
    const claimed = this.#intervalOf(author) ?? HEARTBEAT_MIN_INTERVAL_MS
    const interval = Math.min(HEARTBEAT_MAX_INTERVAL_MS, Math.max(HEARTBEAT_MIN_INTERVAL_MS, claimed))
    return HEARTBEAT_REFILLS_PER_INTERVAL / interval
  }
}
