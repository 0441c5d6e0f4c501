/**
 * Subscription failures: one class per failure, told apart by `name` and `code` (the API maps codes to
 * gRPC status in src/api/errors.ts). Messages quote client text only through quote().
 */
import { quote } from '../quote.ts'

/** The envelope is not signed by its key (or is not a well-formed envelope). */
export class SubscriptionSignatureError extends Error {
  override name = 'SubscriptionSignatureError'
  readonly code = 'SUBSCRIPTION_BAD_SIGNATURE'
  constructor (what: string, options?: ErrorOptions) {
    super(`the ${what} envelope does not verify: ${(options?.cause as Error | undefined)?.message ?? 'bad signature'}`, options)
  }
}

/** An envelope of another payload type where a subscription request or cancel was expected. */
export class SubscriptionPayloadTypeError extends Error {
  override name = 'SubscriptionPayloadTypeError'
  readonly code = 'SUBSCRIPTION_WRONG_PAYLOAD_TYPE'
  readonly expected: string
  constructor (expected: string, actual: string) {
    super(`expected payload type "${expected}", got ${quote(actual)}`)
    this.expected = expected
  }
}

/** The signed payload is not the protobuf message its payload type names. */
export class SubscriptionMalformedError extends Error {
  override name = 'SubscriptionMalformedError'
  readonly code = 'SUBSCRIPTION_MALFORMED'
  constructor (what: string, options?: ErrorOptions) {
    super(`the ${what} payload is malformed: ${(options?.cause as Error | undefined)?.message ?? 'unreadable'}`, options)
  }
}

/** A request whose terms break a rule or a limit; `field` is the SubscriptionRequest field (snake_case). */
export class InvalidSubscriptionError extends Error {
  override name = 'InvalidSubscriptionError'
  readonly code = 'INVALID_SUBSCRIPTION'
  readonly field: string
  constructor (field: string, reason: string) {
    super(`invalid subscription request: ${field}: ${reason}`)
    this.field = field
  }
}

/** A request presented at or after its expires_at (beyond the clock skew allowed). */
export class SubscriptionExpiredError extends Error {
  override name = 'SubscriptionExpiredError'
  readonly code = 'SUBSCRIPTION_EXPIRED'
  /** The request's expires_at (unix seconds). */
  readonly expiresAt: number
  constructor (expiresAt: number, nowS: number) {
    super(`the subscription request expired at ${isoSeconds(expiresAt)} (expires_at ${expiresAt}); it is now ${isoSeconds(nowS)}: the owner must sign a new one`)
    this.expiresAt = expiresAt
  }
}

/** A cancel signed by anyone but the subscription's owner (the SDK's NotSubscriptionOwner). */
export class NotSubscriptionOwnerError extends Error {
  override name = 'NotSubscriptionOwnerError'
  readonly code = 'NOT_SUBSCRIPTION_OWNER'
  constructor (subscriptionId: string, signer: string) {
    super(`only the owner may cancel subscription ${subscriptionId}; this cancel is signed by ${signer}`)
  }
}

/** A cancel that names another subscription, or was issued further in the future than the clock skew allows. */
export class InvalidCancelError extends Error {
  override name = 'InvalidCancelError'
  readonly code = 'INVALID_SUBSCRIPTION_CANCEL'
  constructor (reason: string) {
    super(`invalid subscription cancel: ${reason}`)
  }
}

export class SubscriptionNotFoundError extends Error {
  override name = 'SubscriptionNotFoundError'
  readonly code = 'SUBSCRIPTION_NOT_FOUND'
  readonly subscriptionId: string
  constructor (subscriptionId: string) {
    super(`no subscription ${quote(subscriptionId)}`)
    this.subscriptionId = subscriptionId
  }
}

/** An id that could never name a subscription (not 64 lowercase hex digits). */
export class InvalidSubscriptionIdError extends Error {
  override name = 'InvalidSubscriptionIdError'
  readonly code = 'INVALID_SUBSCRIPTION_ID'
  constructor (id: string) {
    super(`subscription id ${quote(id)} is not 64 lowercase hex digits (the sha256 of its owner and nonce)`)
  }
}

/** A list filter naming a state that does not exist. */
export class InvalidSubscriptionFilterError extends Error {
  override name = 'InvalidSubscriptionFilterError'
  readonly code = 'INVALID_SUBSCRIPTION_FILTER'
  constructor (reason: string) {
    super(`invalid subscription filter: ${reason}`)
  }
}

/** A replicated event signed by a node that is not a coordinator, or not a signed event at all. */
export class ReplicationRefusedError extends Error {
  override name = 'ReplicationRefusedError'
  readonly code = 'SUBSCRIPTION_EVENT_REFUSED'
  readonly reason: string
  constructor (reason: string, options?: ErrorOptions) {
    super(`subscription event refused: ${reason}`, options)
    this.reason = reason
  }
}

/** Used before start() or after stop(). */
export class SubscriptionsNotStartedError extends Error {
  override name = 'SubscriptionsNotStartedError'
  readonly code = 'SUBSCRIPTIONS_NOT_STARTED'
  constructor () {
    super('the subscriptions component is not started')
  }
}

function isoSeconds (s: number): string {
  const d = new Date(s * 1000)
  return Number.isNaN(d.getTime()) ? String(s) : d.toISOString().replace('.000Z', 'Z')
}
