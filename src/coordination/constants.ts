import { MAX_RECORD_BYTES } from '../records/constants.ts'

/** The record log of subscription events on a scheduler (a section of the node's LevelDB). */
export const SUBSCRIPTION_EVENTS_LOG = 'subscription-events'
/** StoredRecord.kind of a subscription event (an encoded SignedEnvelope of SubscriptionEvent). */
export const SUBSCRIPTION_EVENT_KIND = 'subscription-event'
/**
 * Catch-up from every other live scheduler this often: the push in replicate() carries events at
 * once; this covers a scheduler that was down, cut off, or missed a push.
 */
export const COORDINATION_SYNC_INTERVAL_MS = 2_000
/** replicate() waits this long for the other schedulers; a busy 2-core machine answers in tens of ms. */
export const REPLICATE_TIMEOUT_MS = 2_000
/**
 * A scheduler this node has had no connection to for this long is not live, whatever its last
 * heartbeat says: long enough for a reconnect after a blip, short enough that a killed owner's
 * subscriptions move within one short period.
 */
export const DISCONNECTED_GRACE_MS = 1_500
/** The live view (who is a live scheduler) is reused this long: ownership is asked per subscription per tick. */
export const LIVE_VIEW_MS = 250
/** Owners remembered per view; past this many keys the memo starts over (bounded whatever the book holds). */
export const MAX_OWNER_MEMO = 100_000
/**
 * Events replicated together in one store write and one push per scheduler: at most this many, and
 * at most this many bytes (one event is at most a record; a push request holds two, see MAX_SYNC_REQUEST_BYTES).
 */
export const MAX_REPLICATE_BATCH = 64
export const MAX_REPLICATE_BATCH_BYTES = MAX_RECORD_BYTES
