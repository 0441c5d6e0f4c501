/**
 * The Infernet SDK Coordinator's rules (ritual-net/infernet-sdk v1.1.0, src/Coordinator.sol), as pure
 * functions of a subscription's terms and a time in unix seconds. No I/O: the book applies them under
 * its write lock, the tests walk them second by second. docs/SUBSCRIPTIONS.md lists them in order.
 */

export const SUBSCRIPTION_STATES = ['pending', 'active', 'completed', 'cancelled'] as const
export type SubscriptionState = typeof SUBSCRIPTION_STATES[number]

/** Why a response is not accepted, in the order the checks run. */
export const REFUSAL_CODES = [
  'SUBSCRIPTION_NOT_FOUND',
  'SUBSCRIPTION_CANCELLED',
  'SUBSCRIPTION_NOT_ACTIVE',
  'INTERVAL_MISMATCH',
  'SUBSCRIPTION_COMPLETED',
  'INTERVAL_COMPLETED',
  'NODE_RESPONDED_ALREADY'
] as const
export type RefusalCode = typeof REFUSAL_CODES[number]

/** What the rules read of a subscription (unix seconds). */
export interface SubscriptionTerms {
  activeAt: number
  /** Seconds between intervals; 0 = one-time. */
  period: number
  /** Number of intervals (>= 1). */
  frequency: number
  /** Responses per interval, each from a distinct node (>= 1). */
  redundancy: number
  /** When the owner's cancel was accepted; 0 = not cancelled. */
  cancelledAt: number
}

/** The Coordinator's activeAt: creation + period, so a one-time subscription (period 0) is active at once. */
export function activeAtOf (createdAt: number, period: number): number {
  return createdAt + period
}

/**
 * The interval at `nowS`: floor((now - activeAt) / period) + 1, always 1 when period is 0
 * (getSubscriptionInterval). 0 before activeAt, where the SDK never asks (it refuses first).
 */
export function intervalAt (activeAt: number, period: number, nowS: number): number {
  if (nowS < activeAt) return 0
  if (period === 0) return 1
  return Math.floor((nowS - activeAt) / period) + 1
}

/**
 * The last interval that can ever be delivered: `frequency`, except that with period 0 time never
 * moves past interval 1, so a one-time subscription has exactly one interval whatever its frequency.
 */
export function lastInterval (terms: Pick<SubscriptionTerms, 'period' | 'frequency'>): number {
  return terms.period === 0 ? Math.min(1, terms.frequency) : terms.frequency
}

/** Unix seconds [start, end) of `interval`; end is Infinity for a one-time subscription. */
export function intervalBounds (terms: Pick<SubscriptionTerms, 'activeAt' | 'period'>, interval: number): { startS: number, endS: number } {
  if (terms.period === 0) return { startS: terms.activeAt, endS: Number.POSITIVE_INFINITY }
  const startS = terms.activeAt + (interval - 1) * terms.period
  return { startS, endS: startS + terms.period }
}

/**
 * The state at `nowS`. `deliveredInLast` is the number of responses accepted for the last interval:
 * once that interval has its redundancy, nothing can ever be accepted again (the SDK answers
 * INTERVAL_COMPLETED forever), so the subscription is completed without waiting for the clock. This is
 * the only way a one-time subscription (period 0) completes: its interval 1 never ends by time.
 */
export function stateAt (terms: SubscriptionTerms, nowS: number, deliveredInLast = 0): SubscriptionState {
  if (terms.cancelledAt > 0) return 'cancelled'
  if (nowS < terms.activeAt) return 'pending'
  const interval = intervalAt(terms.activeAt, terms.period, nowS)
  const last = lastInterval(terms)
  if (interval > last) return 'completed'
  if (interval === last && deliveredInLast >= terms.redundancy) return 'completed'
  return 'active'
}

export interface ResponseClaim {
  /** The interval the response is for. */
  interval: number
  /** The node that answered. */
  nodeId: string
  /** When the response arrives (unix seconds). */
  nowS: number
}

/**
 * null when a response may be accepted now, else why not, in the order of
 * Coordinator.deliverCompute(): exists, active, current interval, not completed, redundancy left,
 * node not yet heard this interval. `delivered` are the node ids already accepted for `claim.interval`.
 *
 * The SDK cancels by setting activeAt to the largest uint32, so a cancelled subscription fails its
 * "active" check; we make the same check at the same place, named SUBSCRIPTION_CANCELLED.
 */
export function checkResponse (terms: SubscriptionTerms | undefined, delivered: readonly string[], claim: ResponseClaim): RefusalCode | null {
  if (terms === undefined) return 'SUBSCRIPTION_NOT_FOUND'
  if (terms.cancelledAt > 0) return 'SUBSCRIPTION_CANCELLED'
  if (claim.nowS < terms.activeAt) return 'SUBSCRIPTION_NOT_ACTIVE'
  const interval = intervalAt(terms.activeAt, terms.period, claim.nowS)
  if (claim.interval !== interval) return 'INTERVAL_MISMATCH'
  if (interval > terms.frequency) return 'SUBSCRIPTION_COMPLETED'
  return checkRedundancy(terms, delivered, claim.nodeId)
}

export interface ReplicatedClaim {
  interval: number
  nodeId: string
  /** When the coordinator that recorded it accepted it (unix seconds). */
  acceptedAtS: number
}

/**
 * The same rules for a response another coordinator accepted, which reaches this one later: no check
 * against this node's clock (the recording coordinator made it), but the interval must be one that
 * exists, the cancel must not predate the acceptance, and redundancy and distinct nodes hold across
 * every coordinator's responses.
 */
export function checkReplicatedResponse (terms: SubscriptionTerms | undefined, delivered: readonly string[], claim: ReplicatedClaim): RefusalCode | null {
  if (terms === undefined) return 'SUBSCRIPTION_NOT_FOUND'
  // A response accepted before the cancel stands, as a delivery mined before the cancel would; a tie goes to the cancel.
  if (terms.cancelledAt > 0 && claim.acceptedAtS >= terms.cancelledAt) return 'SUBSCRIPTION_CANCELLED'
  if (claim.acceptedAtS < terms.activeAt) return 'SUBSCRIPTION_NOT_ACTIVE'
  if (!Number.isInteger(claim.interval) || claim.interval < 1 || (terms.period === 0 && claim.interval !== 1)) return 'INTERVAL_MISMATCH'
  if (claim.interval > terms.frequency) return 'SUBSCRIPTION_COMPLETED'
  return checkRedundancy(terms, delivered, claim.nodeId)
}

function checkRedundancy (terms: SubscriptionTerms, delivered: readonly string[], nodeId: string): RefusalCode | null {
  if (delivered.length >= terms.redundancy) return 'INTERVAL_COMPLETED'
  if (delivered.includes(nodeId)) return 'NODE_RESPONDED_ALREADY'
  return null
}
