/** The client library's defaults, each with why it is what it is. */
import { PAYLOAD_TYPES } from '../protocol/constants.ts'

/** One unary call to one gateway: long enough for a busy gateway, short enough to move on from a hung one. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000

/**
 * `run()` with no signal, timeout or job deadline still ends: a job the gateway cannot finish in this
 * long is left running there (fetch it with `get()` later), never waited on forever.
 */
export const DEFAULT_RUN_TIMEOUT_MS = 10 * 60_000

/** Extra time `run()` allows past the job's own deadline: the gateway's answer takes a round trip after it. */
export const RUN_DEADLINE_GRACE_MS = 15_000

/** First pause after a round in which every gateway failed; doubled each round up to the maximum. */
export const BACKOFF_INITIAL_MS = 250
/** A gateway that is down for a while is asked again at least this often. */
export const BACKOFF_MAX_MS = 5_000

/**
 * A watch that has heard nothing for this long asks the same gateway for the job (GetJob): a gateway
 * that is stopped or cut off without closing its sockets never breaks the stream, but fails this call.
 */
export const WATCH_PROBE_INTERVAL_MS = 5_000

/** Job ids the client remembers (to resubmit the same job on failover); the oldest are forgotten first. */
export const MAX_REMEMBERED_JOBS = 1024

/** Signed payload types of the owner's subscription messages (proto/inframind/v1/subscription.proto). */
export const SUBSCRIPTION_REQUEST_PAYLOAD_TYPE = PAYLOAD_TYPES.subscriptionRequest
export const SUBSCRIPTION_CANCEL_PAYLOAD_TYPE = PAYLOAD_TYPES.subscriptionCancel

/**
 * A signed request must expire (gateways refuse expires_at 0); when the caller gives no expiry it
 * is good for this long, time enough to reach a gateway through failovers, not a standing licence.
 */
export const DEFAULT_REQUEST_TTL_S = 60 * 60

/** Longest nonce a gateway takes (characters), and the id's domain: the gateways' own rules. */
export { MAX_NONCE_CHARS, SUBSCRIPTION_ID_DOMAIN } from '../subscriptions/constants.ts'

/** A whole operation other than run/watch (all its failovers and backoffs included), unless the caller says otherwise. */
export const DEFAULT_OPERATION_TIMEOUT_MS = 30_000
