/** One error class per failure of the client library, told apart by `name` and `code`. */

/** Every gateway was tried (and tried again) until the caller's deadline or signal ended the wait. */
export class GatewaysUnavailableError extends Error {
  readonly code = 'GATEWAYS_UNAVAILABLE'
  /** Each gateway's last failure, by address. */
  readonly failures: ReadonlyMap<string, Error>
  constructor (failures: Map<string, Error>, why: string, options?: ErrorOptions) {
    const list = [...failures].map(([addr, err]) => `${addr}: ${describe(err)}`).join('; ')
    super(`no gateway could complete the call (${why})${list !== '' ? `: ${list}` : ''}`, options)
    this.name = 'GatewaysUnavailableError'
    this.failures = failures
  }
}

/** The caller's overall deadline passed (the job itself may still run on the mesh: fetch it later by id). */
export class ClientDeadlineError extends Error {
  readonly code = 'DEADLINE_EXCEEDED'
  constructor (what: string, options?: ErrorOptions) {
    super(`${what}: deadline exceeded`, options)
    this.name = 'ClientDeadlineError'
  }
}

/** The caller's AbortSignal fired. */
export class ClientAbortedError extends Error {
  readonly code = 'ABORTED'
  constructor (what: string, options?: ErrorOptions) {
    super(`${what}: aborted`, options)
    this.name = 'ClientAbortedError'
  }
}

/** A call after close(). */
export class ClientClosedError extends Error {
  readonly code = 'CLIENT_CLOSED'
  constructor () {
    super('the client is closed')
    this.name = 'ClientClosedError'
  }
}

/** The client was given no gateway (and discovery found none). */
export class NoGatewaysError extends Error {
  readonly code = 'NO_GATEWAYS'
  constructor (detail = 'give at least one gateway as host:port') {
    super(`no gateways: ${detail}`)
    this.name = 'NoGatewaysError'
  }
}

/** A subscription spec the client refuses to sign (it could never be accepted). */
export class InvalidSubscriptionSpecError extends Error {
  readonly code = 'INVALID_SUBSCRIPTION'
  readonly field: string
  constructor (field: string, reason: string) {
    super(`subscription ${field}: ${reason}`)
    this.name = 'InvalidSubscriptionSpecError'
    this.field = field
  }
}

/** A signed envelope that is not the owner-signed message it was given as. */
export class InvalidSignedRequestError extends Error {
  readonly code = 'INVALID_SIGNED_REQUEST'
  constructor (reason: string, options?: ErrorOptions) {
    super(`not a valid signed subscription message: ${reason}`, options)
    this.name = 'InvalidSignedRequestError'
  }
}

/** A subscription response carries no sealed output (lazy subscription, or none delivered inline). */
export class NoSealedOutputError extends Error {
  readonly code = 'NO_SEALED_OUTPUT'
  constructor (subscriptionId: string, interval: number, index: number) {
    super(`response ${index} of interval ${interval} of subscription ${subscriptionId} carries no sealed output (lazy: fetch it by hash from an archive)`)
    this.name = 'NoSealedOutputError'
  }
}

/** The opened output is not the bytes the response's output_hash names. */
export class OutputHashMismatchError extends Error {
  readonly code = 'OUTPUT_HASH_MISMATCH'
  constructor (what: string) {
    super(`${what}: sha256 of the output does not match its output_hash`)
    this.name = 'OutputHashMismatchError'
  }
}

/** An archive's reply whose hash is not the sha256 of the record's bytes. */
export class RecordHashMismatchError extends Error {
  readonly code = 'RECORD_HASH_MISMATCH'
  constructor (archive: string, claimed: string) {
    super(`archive ${archive} served a record whose bytes do not hash to ${claimed.slice(0, 16)}…`)
    this.name = 'RecordHashMismatchError'
  }
}

function describe (err: Error): string {
  const e = err as Error & { code?: unknown, details?: unknown }
  const text = typeof e.details === 'string' && e.details !== '' ? e.details : e.message
  return text.length > 160 ? `${text.slice(0, 160)}…` : text
}
