/**
 * Owner-signed subscription messages: a SubscriptionRequest or SubscriptionCancel encoded once and
 * signed into a SignedEnvelope with the owner's key. The same bytes go to every gateway tried, so a
 * request that reached a gateway before it died is the same subscription, never a second one.
 * Responses carry the output sealed to the owner; only the owner's key opens it.
 */
import { subscriptionId } from '../subscriptions/request.ts'
import { createHash, randomUUID } from 'node:crypto'
import type { Identity } from '../identity/types.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import { signEnvelope, verifyEnvelope, type SignedEnvelope } from '../envelope/index.ts'
import { decodeStrict, encode } from '../protocol/codec.ts'
import type { SubscriptionCancel, SubscriptionRequest, SubscriptionResponse } from '../protocol/generated.ts'
import { openSealed, SEAL_CONTEXTS } from '../seal/index.ts'
import {
  DEFAULT_REQUEST_TTL_S, MAX_NONCE_CHARS, SUBSCRIPTION_CANCEL_PAYLOAD_TYPE, SUBSCRIPTION_REQUEST_PAYLOAD_TYPE
} from './constants.ts'
import { InvalidSignedRequestError, InvalidSubscriptionSpecError, NoSealedOutputError, OutputHashMismatchError } from './errors.ts'

/** What an owner asks for (SubscriptionRequest, with defaults and friendlier types). */
export interface SubscriptionSpec {
  /** One container or a chain. */
  containers: string[]
  input: Uint8Array | string
  /** Number of intervals (>= 1). */
  frequency: number
  /** Seconds between intervals; 0 = one-time. */
  period: number
  /** Distinct nodes answering per interval (>= 1). */
  redundancy: number
  verification?: { method: 'none' | 'signature' | 'reexecute', validators?: number, quorum?: number }
  /** Outputs only by hash (kept in archives); responses then carry no sealed output. */
  lazy?: boolean
  /** (owner, nonce) names one subscription forever; a random UUID when not given. */
  nonce?: string
  /** Unix seconds after which no gateway accepts the request (unset = an hour from signing; gateways refuse 0). */
  expiresAt?: number
  /** Per-interval job deadline in ms (0 / unset = the gateway's default). */
  deadlineMs?: number
}

const UINT32_MAX = 0xffff_ffff

function whole (field: string, v: number, min: number, max = UINT32_MAX): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new InvalidSubscriptionSpecError(field, `must be a whole number from ${min} to ${max}, got ${String(v)}`)
  return v
}

/**
 * The request message of a spec; refuses what no gateway would accept whatever its limits (the
 * gateway's own limits, e.g. the most intervals, are checked there).
 */
export function subscriptionRequest (spec: SubscriptionSpec, nowMs = Date.now()): SubscriptionRequest {
  if (!Array.isArray(spec.containers) || spec.containers.length === 0 || spec.containers.some((c) => typeof c !== 'string' || c === '')) {
    throw new InvalidSubscriptionSpecError('containers', 'give at least one container id')
  }
  const nonce = spec.nonce ?? randomUUID()
  const chars = [...nonce].length
  if (chars === 0 || chars > MAX_NONCE_CHARS) throw new InvalidSubscriptionSpecError('nonce', `must be 1-${MAX_NONCE_CHARS} characters, got ${chars}`)
  const frequency = whole('frequency', spec.frequency, 1)
  const period = whole('period', spec.period, 0)
  // With period 0 the interval is 1 forever: a second interval could never come.
  if (period === 0 && frequency !== 1) throw new InvalidSubscriptionSpecError('frequency', `a one-time subscription (period 0) has exactly one interval; frequency must be 1, got ${frequency}`)
  const expiresAt = whole('expiresAt', spec.expiresAt ?? Math.floor(nowMs / 1000) + DEFAULT_REQUEST_TTL_S, 1, Number.MAX_SAFE_INTEGER)
  const v = spec.verification
  return {
    containers: [...spec.containers],
    input: typeof spec.input === 'string' ? new TextEncoder().encode(spec.input) : spec.input,
    frequency,
    period,
    redundancy: whole('redundancy', spec.redundancy, 1),
    verification: v !== undefined ? { method: v.method, validators: whole('validators', v.validators ?? 0, 0), quorum: whole('quorum', v.quorum ?? 0, 0) } : null,
    lazy: spec.lazy ?? false,
    nonce,
    expiresAt,
    deadlineMs: whole('deadlineMs', spec.deadlineMs ?? 0, 0, Number.MAX_SAFE_INTEGER)
  }
}

/** The id a request names: hex(sha256("inframind/subscription-id/v1" ‖ 0x00 ‖ owner public key ‖ utf8(nonce))), as every gateway derives it. */
export const subscriptionIdOf = subscriptionId

/** The owner's signed request: what CreateSubscription takes, from the owner or from anyone they hand it to. */
export function signSubscriptionRequest (owner: Identity, spec: SubscriptionSpec, nowMs = Date.now()): SignedEnvelope {
  return signEnvelope(owner, SUBSCRIPTION_REQUEST_PAYLOAD_TYPE, encode('inframind.v1.SubscriptionRequest', subscriptionRequest(spec, nowMs)))
}

/** The owner's signed cancel of subscription `id`. */
export function signSubscriptionCancel (owner: Identity, subscriptionId: string, issuedAtMs = Date.now()): SignedEnvelope {
  if (subscriptionId === '') throw new InvalidSubscriptionSpecError('subscriptionId', 'must not be empty')
  const cancel: SubscriptionCancel = { subscriptionId, issuedAtMs }
  return signEnvelope(owner, SUBSCRIPTION_CANCEL_PAYLOAD_TYPE, encode('inframind.v1.SubscriptionCancel', cancel))
}

/** Checks a signed request (payload type, signature, message) and returns it with its owner's id and the subscription id it names. */
export function openSubscriptionRequest (env: SignedEnvelope): { id: string, owner: string, request: SubscriptionRequest } {
  try {
    verifyEnvelope(env, { payloadType: SUBSCRIPTION_REQUEST_PAYLOAD_TYPE })
    const request = decodeStrict('inframind.v1.SubscriptionRequest', env.payload)
    return { id: subscriptionIdOf(env.publicKey, request.nonce), owner: nodeIdFromPublicKey(env.publicKey), request }
  } catch (err) {
    throw new InvalidSignedRequestError((err as Error).message, { cause: err })
  }
}

/** Checks a signed cancel and returns it with its signer's id. */
export function openSubscriptionCancel (env: SignedEnvelope): { owner: string, cancel: SubscriptionCancel } {
  try {
    verifyEnvelope(env, { payloadType: SUBSCRIPTION_CANCEL_PAYLOAD_TYPE })
    return { owner: nodeIdFromPublicKey(env.publicKey), cancel: decodeStrict('inframind.v1.SubscriptionCancel', env.payload) }
  } catch (err) {
    throw new InvalidSignedRequestError((err as Error).message, { cause: err })
  }
}

/** The seal context of a response's output (bound to its subscription and job). */
export function subscriptionOutputContext (response: Pick<SubscriptionResponse, 'subscriptionId' | 'jobId'>): string {
  return SEAL_CONTEXTS.subscriptionOutput(response.subscriptionId, response.jobId)
}

/**
 * Opens a response's sealed output with the owner's identity and checks it against output_hash.
 * Throws NoSealedOutputError (lazy), SealOpenError (not sealed to this key) or OutputHashMismatchError.
 */
export function openSubscriptionOutput (owner: Identity, response: SubscriptionResponse): Uint8Array {
  if (response.sealedOutput.byteLength === 0) throw new NoSealedOutputError(response.subscriptionId, response.interval, response.index)
  const output = openSealed(owner, response.sealedOutput, subscriptionOutputContext(response))
  if (response.outputHash.byteLength > 0) {
    const hash = createHash('sha256').update(output).digest()
    if (!hash.equals(Buffer.from(response.outputHash))) throw new OutputHashMismatchError(`response ${response.index} of interval ${response.interval}`)
  }
  return output
}
