/**
 * The owner's signed messages: a SubscriptionRequest (which names its subscription by the owner's key
 * and a nonce) and a SubscriptionCancel. A request is good wherever it is presented, by its owner or by
 * anyone the owner gave it to (delegated, as the SDK's EIP712Coordinator): the signature, not the
 * connection, says who the owner is.
 */
import { createHash } from 'node:crypto'
import { CONTAINER_ID_PATTERN } from '../config/containers.ts'
import { verifyEnvelope, type SignedEnvelope } from '../envelope/index.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import { decodeSubscriptionCancel, decodeSubscriptionRequest, PAYLOAD_TYPES, type Subscription, type SubscriptionCancel, type SubscriptionRequest } from '../protocol/index.ts'
import { quote } from '../quote.ts'
import type { JobOrigin } from '../runtime/types.ts'
import { DEFAULT_LIMITS, JOB_ID_ID_HEX, MAX_NONCE_CHARS, SUBSCRIPTION_ID_DOMAIN, SUBSCRIPTION_ID_PATTERN, type SubscriptionLimits } from './constants.ts'
import {
  InvalidCancelError, InvalidSubscriptionError, InvalidSubscriptionIdError, NotSubscriptionOwnerError, SubscriptionExpiredError,
  SubscriptionMalformedError, SubscriptionPayloadTypeError, SubscriptionSignatureError
} from './errors.ts'

/**
 * hex(sha256(utf8("inframind/subscription-id/v1") ‖ 0x00 ‖ owner ed25519 public key (32 bytes) ‖ utf8(nonce))).
 * The key has a fixed length and the nonce runs to the end, so no two (key, nonce) pairs share bytes;
 * the domain keeps the digest from ever matching another inframind hash.
 */
export function subscriptionId (ownerPublicKey: Uint8Array, nonce: string): string {
  if (!(ownerPublicKey instanceof Uint8Array) || ownerPublicKey.length !== 32) throw new TypeError('an ed25519 public key is 32 bytes')
  return createHash('sha256')
    .update(SUBSCRIPTION_ID_DOMAIN).update(Uint8Array.of(0)).update(ownerPublicKey).update(nonce, 'utf8')
    .digest('hex')
}

/** `id` when it can name a subscription; InvalidSubscriptionIdError otherwise (never looked up). */
export function checkSubscriptionId (id: unknown): string {
  if (typeof id !== 'string' || !SUBSCRIPTION_ID_PATTERN.test(id)) throw new InvalidSubscriptionIdError(String(id))
  return id
}

/** Deterministic, so a coordinator taking a subscription over asks for the same job a worker may already hold. */
export function subscriptionJobId (id: string, interval: number, index: number, attempt = 0): string {
  // A retry of a response in the same interval (its first job failed or was refused) is another job.
  return `s:${id.slice(0, JOB_ID_ID_HEX)}:${interval}:${index}${attempt > 0 ? `.${attempt}` : ''}`
}

/**
 * The origin a subscription's jobs carry: the owner, proven by the signed request, as the delegate the
 * Guardian's allowed_delegates judges (never a field a client types).
 */
export function subscriptionOrigin (subscription: Pick<Subscription, 'owner'>): JobOrigin {
  return { ip: '', peerId: '', delegate: subscription.owner }
}

export interface OpenedRequest {
  id: string
  /** Node-id form of the signing key. */
  owner: string
  request: SubscriptionRequest
  envelope: SignedEnvelope
}

/** Payload type, signature, then the payload and its nonce: enough to name the subscription. */
export function openRequest (envelope: SignedEnvelope): OpenedRequest {
  const payload = openSigned(envelope, PAYLOAD_TYPES.subscriptionRequest, 'subscription request')
  let request: SubscriptionRequest
  try {
    request = decodeSubscriptionRequest(payload)
  } catch (err) {
    throw new SubscriptionMalformedError('subscription request', { cause: err })
  }
  const chars = [...request.nonce].length
  if (chars === 0) throw new InvalidSubscriptionError('nonce', 'required: (owner, nonce) names the subscription')
  if (chars > MAX_NONCE_CHARS) throw new InvalidSubscriptionError('nonce', `${chars} characters, at most ${MAX_NONCE_CHARS}`)
  return { id: subscriptionId(envelope.publicKey, request.nonce), owner: nodeIdFromPublicKey(envelope.publicKey), request, envelope }
}

export interface RequestCheck {
  /** Unix seconds now. */
  nowS: number
  /** Tolerance given to expires_at for clocks that differ (as JWT verifiers give `exp`); 0 = the SDK's exact rule. */
  maxClockSkewMs: number
  limits?: SubscriptionLimits
}

/** The terms, once the envelope is open: expiry first (the SDK's SignatureExpired), then shape and limits. */
export function checkTerms (opened: OpenedRequest, opts: RequestCheck): OpenedRequest {
  const r = opened.request
  const limits = opts.limits ?? DEFAULT_LIMITS
  if (r.expiresAt === 0) throw new InvalidSubscriptionError('expires_at', 'required (unix seconds): a signed request must not be usable forever')
  // The SDK refuses at block.timestamp >= expiry; the skew only widens that for a clock ahead of the signer's.
  if (opts.nowS * 1000 >= r.expiresAt * 1000 + opts.maxClockSkewMs) throw new SubscriptionExpiredError(r.expiresAt, opts.nowS)
  if (r.frequency === 0) throw new InvalidSubscriptionError('frequency', 'must be at least 1 (the number of intervals)')
  if (r.frequency > limits.maxFrequency) throw new InvalidSubscriptionError('frequency', `${r.frequency}, at most ${limits.maxFrequency}`)
  if (r.redundancy === 0) throw new InvalidSubscriptionError('redundancy', 'must be at least 1 (distinct nodes answering each interval)')
  if (r.redundancy > limits.maxRedundancy) throw new InvalidSubscriptionError('redundancy', `${r.redundancy}, at most ${limits.maxRedundancy}`)
  if (r.period > limits.maxPeriodS) throw new InvalidSubscriptionError('period', `${r.period} s, at most ${limits.maxPeriodS} s`)
  // With period 0 the interval is 1 forever (getSubscriptionInterval): a second interval can never come.
  if (r.period === 0 && r.frequency !== 1) throw new InvalidSubscriptionError('frequency', `a one-time subscription (period 0) has exactly one interval; frequency must be 1, got ${r.frequency}`)
  if (r.containers.length === 0) throw new InvalidSubscriptionError('containers', 'at least one container is required')
  if (r.containers.length > limits.maxContainers) throw new InvalidSubscriptionError('containers', `${r.containers.length} containers, at most ${limits.maxContainers}`)
  for (const c of r.containers) {
    if (!CONTAINER_ID_PATTERN.test(c)) throw new InvalidSubscriptionError('containers', `${quote(c)} is not a container id`)
  }
  if (r.input.byteLength > limits.maxInputBytes) throw new InvalidSubscriptionError('input', `${r.input.byteLength} bytes, at most ${limits.maxInputBytes}`)
  if (r.deadlineMs > limits.maxDeadlineMs) throw new InvalidSubscriptionError('deadline_ms', `${r.deadlineMs} ms, at most ${limits.maxDeadlineMs}`)
  const method = r.verification?.method ?? ''
  if (!['', 'none', 'signature', 'reexecute'].includes(method)) throw new InvalidSubscriptionError('verification.method', `${quote(method)} is not one of none, signature, reexecute`)
  return opened
}

/** openRequest then checkTerms: a request fit to create a new subscription now. */
export function checkRequest (envelope: SignedEnvelope, opts: RequestCheck): OpenedRequest {
  return checkTerms(openRequest(envelope), opts)
}

export interface OpenedCancel {
  cancel: SubscriptionCancel
  /** Node-id form of the signing key. */
  signer: string
}

/** Payload type, signature and payload of a cancel: which subscription it names, and who signed it. */
export function openCancel (envelope: SignedEnvelope): OpenedCancel {
  const payload = openSigned(envelope, PAYLOAD_TYPES.subscriptionCancel, 'subscription cancel')
  let cancel: SubscriptionCancel
  try {
    cancel = decodeSubscriptionCancel(payload)
  } catch (err) {
    throw new SubscriptionMalformedError('subscription cancel', { cause: err })
  }
  return { cancel, signer: nodeIdFromPublicKey(envelope.publicKey) }
}

export interface CancelCheck {
  /** Unix ms now; with maxClockSkewMs, refuses a cancel issued further in the future. Omitted: no time check (replicated cancels). */
  nowMs?: number
  maxClockSkewMs?: number
}

/**
 * A cancel of `subscription`: signed by its owner (the SDK's only check, NotSubscriptionOwner), for
 * this subscription, not issued from the future. The signer is the envelope's key, never a field.
 */
export function checkCancel (envelope: SignedEnvelope, subscription: Pick<Subscription, 'id' | 'owner'>, opts: CancelCheck = {}): SubscriptionCancel {
  const { cancel, signer } = openCancel(envelope)
  if (cancel.subscriptionId !== subscription.id) throw new InvalidCancelError(`it names subscription ${quote(cancel.subscriptionId)}, not ${subscription.id}`)
  if (signer !== subscription.owner) throw new NotSubscriptionOwnerError(subscription.id, signer)
  if (opts.nowMs !== undefined && cancel.issuedAtMs > opts.nowMs + (opts.maxClockSkewMs ?? 0)) {
    throw new InvalidCancelError(`issued_at_ms ${cancel.issuedAtMs} is more than ${opts.maxClockSkewMs ?? 0} ms ahead of this node's clock (${opts.nowMs})`)
  }
  return cancel
}

function openSigned (envelope: SignedEnvelope, payloadType: string, what: string): Uint8Array {
  if (envelope?.payloadType !== payloadType) throw new SubscriptionPayloadTypeError(payloadType, String(envelope?.payloadType))
  try {
    verifyEnvelope(envelope, { payloadType })
  } catch (err) {
    throw new SubscriptionSignatureError(what, { cause: err })
  }
  return envelope.payload
}
