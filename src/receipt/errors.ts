/** Receipt failures; told apart by `name` and `code`, never by message text. */

export class MalformedReceiptError extends Error {
  override name = 'MalformedReceiptError'
  readonly code = 'MALFORMED_RECEIPT'
  /** Offending field (snake_case, as in receipt.proto) or '' when the bytes are unreadable. */
  readonly field: string
  constructor (field: string, reason: string, options?: ErrorOptions) {
    super(field === '' ? `malformed receipt: ${reason}` : `malformed receipt: ${field}: ${reason}`, options)
    this.field = field
  }
}
