/** Envelope failures; told apart by `name` and `code`, never by message text. */

export class InvalidSignatureError extends Error {
  override name = 'InvalidSignatureError'
  readonly code = 'INVALID_SIGNATURE'
  constructor (message = 'signature does not verify for this public key and payload', options?: ErrorOptions) {
    super(message, options)
  }
}

export class PayloadTypeMismatchError extends Error {
  override name = 'PayloadTypeMismatchError'
  readonly code = 'PAYLOAD_TYPE_MISMATCH'
  readonly expected: string
  readonly actual: string
  constructor (expected: string, actual: string, options?: ErrorOptions) {
    super(`expected payload type "${expected}", got "${clip(actual)}"`, options)
    this.expected = expected
    this.actual = actual
  }
}

export class MalformedEnvelopeError extends Error {
  override name = 'MalformedEnvelopeError'
  readonly code = 'MALFORMED_ENVELOPE'
  /** The offending field (snake_case, as on the wire) or '' when the whole message is unreadable. */
  readonly field: string
  constructor (field: string, reason: string, options?: ErrorOptions) {
    super(field === '' ? `malformed envelope: ${reason}` : `malformed envelope: ${field}: ${reason}`, options)
    this.field = field
  }
}

/** Values in errors may come from the network: never echo more than a short prefix. */
export function clip (text: string, max = 64): string {
  return text.length > max ? text.slice(0, max) + '…' : text
}
