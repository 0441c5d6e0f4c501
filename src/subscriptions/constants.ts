/** Defaults of the subscriptions component, each with the reason for its value. */

/**
 * How often the runner looks at the subscriptions it owns. Intervals are whole seconds (as the
 * Infernet Coordinator's block timestamps), so a quarter second is the most a launch lags the start
 * of its interval, at the cost of a map walk per tick.
 */
export const DEFAULT_TICK_MS = 250

/** Domain of the subscription id hash: a hash of these bytes can never be taken for any other inframind hash. */
export const SUBSCRIPTION_ID_DOMAIN = 'inframind/subscription-id/v1'

/** A subscription id is the hex sha256 of its domain-separated (owner key, nonce). */
export const SUBSCRIPTION_ID_PATTERN = /^[0-9a-f]{64}$/

/** Hex digits of the id in a job id: 96 bits keep ids of distinct subscriptions apart and job ids short. */
export const JOB_ID_ID_HEX = 24

/** The SDK's nonce is a uint32; ours is text, bounded like job ids so it stays cheap to hash, store and log. */
export const MAX_NONCE_CHARS = 128

/** SubscriptionStatus.responses covers at most this many newest intervals (proto comment). */
export const STATUS_INTERVALS = 100

/** ListSubscriptions answers at most this many: a status carries responses, so an unbounded list is an unbounded reply. */
export const MAX_LIST = 1000

/** stop() waits this long for aborted jobs to settle; an injected runJob that ignores its signal cannot hang shutdown. */
export const STOP_TIMEOUT_MS = 5_000

/** What a subscription request may ask for. */
export interface SubscriptionLimits {
  /** Containers in the chain. */
  maxContainers: number
  /** Bytes of SubscriptionRequest.input. */
  maxInputBytes: number
  /** Intervals (SubscriptionRequest.frequency). */
  maxFrequency: number
  /** Seconds between intervals. */
  maxPeriodS: number
  /** Distinct workers per interval. */
  maxRedundancy: number
  /** SubscriptionRequest.deadline_ms. */
  maxDeadlineMs: number
}

export const DEFAULT_LIMITS: SubscriptionLimits = {
  // The gateway's MAX_CHAIN_LENGTH: a subscription's chain runs as ordinary jobs.
  maxContainers: 16,
  // The input is stored by every coordinator and travels in every `created` event: large inputs belong in archives.
  maxInputBytes: 256 * 1024,
  // Bounds what one subscription stores (frequency x redundancy responses): about 11.5 days at one interval a second.
  maxFrequency: 1_000_000,
  // A year: a longer period is a unit mistake (ms for s), not a schedule.
  maxPeriodS: 365 * 24 * 60 * 60,
  // Distinct workers per interval; more than a mesh has serving one container only ever ends in misses.
  maxRedundancy: 16,
  // The gateway's MAX_DEADLINE_MS: a deadline beyond a day is a client bug.
  maxDeadlineMs: 24 * 60 * 60 * 1000
}
