/** Protocol failures; told apart by `name` and `code`, never by message text. */

/** Bytes that are not a well-formed message of the expected type. */
export class MalformedMessageError extends Error {
  override name = 'MalformedMessageError'
  readonly code = 'MALFORMED_MESSAGE'
  /** Full protobuf name of the expected message, e.g. inframind.v1.Heartbeat. */
  readonly messageType: string
  /** Dotted snake_case path of the offending field (as in the .proto), or '' when no field is to blame. */
  readonly field: string
  /** What is wrong, without the message type or the field. */
  readonly reason: string
  constructor (messageType: string, reason: string, options?: ErrorOptions & { field?: string }) {
    const field = options?.field ?? ''
    super(`not a valid ${messageType}: ${field === '' ? '' : `${field}: `}${reason}`, options)
    this.messageType = messageType
    this.field = field
    this.reason = reason
  }
}

/** A message name that is not in proto/inframind/v1: a programming error, not bad input. */
export class UnknownMessageTypeError extends Error {
  override name = 'UnknownMessageTypeError'
  readonly code = 'UNKNOWN_MESSAGE_TYPE'
  readonly messageType: string
  constructor (messageType: string, options?: ErrorOptions) {
    super(`${messageType} is not a message of the loaded .proto files`, options)
    this.messageType = messageType
  }
}

/** The .proto files could not be read or parsed: the install is broken, nothing can be decoded. */
export class ProtocolLoadError extends Error {
  override name = 'ProtocolLoadError'
  readonly code = 'PROTOCOL_LOAD_FAILED'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
  }
}
