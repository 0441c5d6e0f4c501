/**
 * /inframind/roster/1.0.0, one request and one response, each a single length-prefixed frame
 * (unsigned varint length, then the bytes), then the stream closes:
 *   request:  the asker's roster version as an unsigned LEB128 varint (empty = 0, none held)
 *   response: a protobuf SignedEnvelope holding the operator-signed roster, or empty when the
 *             responder holds none newer than the asker's version
 * The response is not trusted for being an answer: the asker verifies it like any roster.
 */
import { decodeEnvelope, encodeEnvelope, uvarint, type SignedEnvelope } from '../envelope/index.ts'

const EMPTY = new Uint8Array(0)
/** 2^53 needs 8 varint bytes; anything longer cannot be a version we could compare. */
const MAX_VERSION_BYTES = 8

export function encodeRosterRequest (version: number): Uint8Array {
  if (!Number.isSafeInteger(version) || version < 0) throw new RangeError(`version ${version} is not a non-negative safe integer`)
  return uvarint(version)
}

/**
 * The asker's version; 0 for an empty or unreadable request, so a peer that sends something else
 * gets the roster (which it then verifies) rather than an error.
 */
export function decodeRosterRequest (bytes: Uint8Array): number {
  let value = 0
  let scale = 1
  for (let i = 0; i < bytes.length && i < MAX_VERSION_BYTES; i++) {
    const b = bytes[i]
    value += (b & 0x7f) * scale
    if ((b & 0x80) === 0) return Number.isSafeInteger(value) ? value : 0
    scale *= 128
  }
  return 0
}

export function encodeRosterResponse (envelope: SignedEnvelope | undefined): Uint8Array {
  return envelope === undefined ? EMPTY : encodeEnvelope(envelope)
}

/** undefined for an empty response; MalformedEnvelopeError for bytes that are not an envelope. */
export function decodeRosterResponse (bytes: Uint8Array): SignedEnvelope | undefined {
  return bytes.byteLength === 0 ? undefined : decodeEnvelope(bytes)
}
