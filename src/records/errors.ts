/** The failures of the record log and its sync protocol, one class each, told apart by `code`. */

/** A record failed its kind's checks (or is of a kind the log does not keep): refused, or dropped when read. */
export class InvalidRecordError extends Error {
  readonly code = 'INVALID_RECORD'
  /** The record's kind as given. */
  readonly kind: string
  /** Which check failed, from a closed set per kind (e.g. INVALID_SIGNATURE, SIGNER_MISMATCH, UNKNOWN_KIND). */
  readonly reason: string
  constructor (kind: string, reason: string, message: string, options?: ErrorOptions) {
    super(`${kind.slice(0, 32)} record refused: ${reason}: ${message}`, options)
    this.name = 'InvalidRecordError'
    this.kind = kind
    this.reason = reason
  }
}

/** A record's data is larger than the log keeps (MAX_RECORD_BYTES). */
export class RecordTooLargeError extends Error {
  readonly code = 'RECORD_TOO_LARGE'
  constructor (bytes: number, max: number) {
    super(`record of ${bytes} bytes; at most ${max} are kept`)
    this.name = 'RecordTooLargeError'
  }
}

/** The log (or the sync on it) was used before start() or after stop(). */
export class RecordLogNotStartedError extends Error {
  readonly code = 'RECORD_LOG_NOT_STARTED'
  constructor (name: string) {
    super(`record log "${name}" is not started (the node is starting or stopping; retry shortly)`)
    this.name = 'RecordLogNotStartedError'
  }
}

/** A query's page token is not one this log handed out. */
export class InvalidPageTokenError extends Error {
  readonly code = 'INVALID_PAGE_TOKEN'
  constructor () {
    super('page_token is not one a previous page returned')
    this.name = 'InvalidPageTokenError'
  }
}

export type SyncErrorCode = 'SYNC_FAILED' | 'SYNC_DENIED' | 'SYNC_RATE_LIMITED' | 'SYNC_ERROR' | 'SYNC_NOT_STARTED'

/**
 * A sync request to a peer did not get an OK: the stream failed or timed out (SYNC_FAILED), the
 * peer refused us (SYNC_DENIED), we were over its rate (SYNC_RATE_LIMITED), or it answered ERROR
 * (SYNC_ERROR, with its text).
 */
export class SyncError extends Error {
  readonly code: SyncErrorCode
  readonly peer: string
  constructor (code: SyncErrorCode, peer: string, message: string, options?: ErrorOptions) {
    super(`record sync with ${peer}: ${message}`, options)
    this.name = 'SyncError'
    this.code = code
    this.peer = peer
  }
}
