import type { SignedEnvelope } from './types.ts'
import { MalformedEnvelopeError } from './errors.ts'

/** Domain tag: a signature made for an envelope can never be replayed as a signature over anything else we sign. */
export const ENVELOPE_DOMAIN = 'inframind-envelope-v1'
const DOMAIN_BYTES = Buffer.from(ENVELOPE_DOMAIN, 'utf8')

export const PUBLIC_KEY_BYTES = 32
export const SIGNATURE_BYTES = 64
/** Payload types are short protocol names ("inframind/receipt/v1"); a long one is garbage, not a type. */
export const MAX_PAYLOAD_TYPE_BYTES = 256

export function uvarintLength (n: number): number {
  let len = 1
  while (n >= 0x80) {
    n = Math.floor(n / 128)
    len++
  }
  return len
}

/** Unsigned LEB128 (protobuf varint) of a non-negative safe integer into `out` at `offset`; returns the new offset. */
export function writeUvarint (n: number, out: Uint8Array, offset: number): number {
  while (n >= 0x80) {
    out[offset++] = (n % 128) | 0x80
    n = Math.floor(n / 128)
  }
  out[offset++] = n
  return offset
}

/** Unsigned LEB128 (protobuf varint) of a non-negative safe integer, as its own bytes. */
export function uvarint (n: number): Uint8Array {
  const out = new Uint8Array(uvarintLength(n))
  writeUvarint(n, out, 0)
  return out
}

/** utf8(domain) ‖ uvarint(len(type)) ‖ type ‖ uvarint(len(payload)) ‖ payload — what ed25519 signs. */
export function signingInput (payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8')
  const size = DOMAIN_BYTES.length + uvarintLength(type.length) + type.length + uvarintLength(payload.length) + payload.length
  const out = Buffer.allocUnsafe(size)
  DOMAIN_BYTES.copy(out, 0)
  let offset = writeUvarint(type.length, out, DOMAIN_BYTES.length)
  type.copy(out, offset)
  offset = writeUvarint(payload.length, out, offset + type.length)
  out.set(payload, offset)
  return out
}

/** Structural checks shared by every entry point; `value` may be anything (it often comes off the network). */
export function assertEnvelopeShape (value: unknown): asserts value is SignedEnvelope {
  if (typeof value !== 'object' || value === null) throw new MalformedEnvelopeError('', 'not an object')
  const env = value as Record<string, unknown>
  if (typeof env.payloadType !== 'string') throw new MalformedEnvelopeError('payload_type', 'missing or not a string')
  if (env.payloadType.length === 0) throw new MalformedEnvelopeError('payload_type', 'empty')
  if (Buffer.byteLength(env.payloadType, 'utf8') > MAX_PAYLOAD_TYPE_BYTES) {
    throw new MalformedEnvelopeError('payload_type', `longer than ${MAX_PAYLOAD_TYPE_BYTES} bytes`)
  }
  if (!(env.payload instanceof Uint8Array)) throw new MalformedEnvelopeError('payload', 'missing or not bytes')
  if (!(env.publicKey instanceof Uint8Array)) throw new MalformedEnvelopeError('public_key', 'missing or not bytes')
  if (env.publicKey.length !== PUBLIC_KEY_BYTES) {
    throw new MalformedEnvelopeError('public_key', `expected ${PUBLIC_KEY_BYTES} bytes, got ${env.publicKey.length}`)
  }
  if (!(env.signature instanceof Uint8Array)) throw new MalformedEnvelopeError('signature', 'missing or not bytes')
  if (env.signature.length !== SIGNATURE_BYTES) {
    throw new MalformedEnvelopeError('signature', `expected ${SIGNATURE_BYTES} bytes, got ${env.signature.length}`)
  }
}
