import type { SignedEnvelope } from './types.ts'
import { MalformedEnvelopeError } from './errors.ts'
import { assertEnvelopeShape } from './signing-input.ts'
import { decodeStrict, encode, MalformedMessageError } from '../protocol/index.ts'

/** The JSON form of an envelope (CLI output, `infra verify` input): bytes as standard base64. */
export interface SignedEnvelopeJson {
  payload_type: string
  payload: string
  public_key: string
  signature: string
}

/** Largest envelope we agree to decode; gRPC and gossip limits are far lower, so bigger is garbage. */
export const MAX_ENVELOPE_BYTES = 16 * 1024 * 1024

/** Protobuf inframind.v1.SignedEnvelope bytes. */
export function encodeEnvelope (env: SignedEnvelope): Uint8Array {
  assertEnvelopeShape(env)
  return encode('inframind.v1.SignedEnvelope', env)
}

/**
 * Parses untrusted bytes: the strict wire check, then the envelope's own rules (key and signature
 * lengths, payload type). Any failure is a MalformedEnvelopeError, never a RangeError from the decoder.
 * The decoded fields never share memory with `bytes`.
 */
export function decodeEnvelope (bytes: Uint8Array): SignedEnvelope {
  if (!(bytes instanceof Uint8Array)) throw new MalformedEnvelopeError('', 'expected bytes')
  if (bytes.length > MAX_ENVELOPE_BYTES) throw new MalformedEnvelopeError('', `larger than ${MAX_ENVELOPE_BYTES} bytes`)
  let env: SignedEnvelope
  try {
    env = decodeStrict('inframind.v1.SignedEnvelope', bytes)
  } catch (err) {
    if (!(err instanceof MalformedMessageError)) throw err
    throw new MalformedEnvelopeError(err.field, `not a protobuf SignedEnvelope (${err.reason})`, { cause: err })
  }
  assertEnvelopeShape(env)
  return env
}

export function envelopeToJson (env: SignedEnvelope): SignedEnvelopeJson {
  assertEnvelopeShape(env)
  return {
    payload_type: env.payloadType,
    payload: base64(env.payload),
    public_key: base64(env.publicKey),
    signature: base64(env.signature)
  }
}

/** Accepts snake_case (our JSON form) or camelCase keys (proto3 JSON mapping); says which field is wrong. */
export function envelopeFromJson (value: unknown): SignedEnvelope {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MalformedEnvelopeError('', 'expected a JSON object with payload_type, payload, public_key, signature')
  }
  const obj = value as Record<string, unknown>
  const pick = (snake: string, camel: string): unknown => obj[snake] !== undefined ? obj[snake] : obj[camel]
  const payloadType = pick('payload_type', 'payloadType')
  if (typeof payloadType !== 'string') throw new MalformedEnvelopeError('payload_type', 'missing or not a string')
  const env = {
    payloadType,
    payload: fromBase64(pick('payload', 'payload'), 'payload'),
    publicKey: fromBase64(pick('public_key', 'publicKey'), 'public_key'),
    signature: fromBase64(pick('signature', 'signature'), 'signature')
  }
  assertEnvelopeShape(env)
  return env
}

function base64 (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

// Buffer.from(s, 'base64') silently skips bad characters; a signed artefact must decode exactly or not at all.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/
const BASE64URL = /^[A-Za-z0-9_-]*$/

function fromBase64 (value: unknown, field: string): Uint8Array {
  if (typeof value !== 'string') throw new MalformedEnvelopeError(field, 'missing or not a base64 string')
  if (BASE64.test(value)) return new Uint8Array(Buffer.from(value, 'base64'))
  if (BASE64URL.test(value) && value.length % 4 !== 1) return new Uint8Array(Buffer.from(value, 'base64url'))
  throw new MalformedEnvelopeError(field, 'not valid base64')
}
