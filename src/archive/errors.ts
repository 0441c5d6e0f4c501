/** The archive's failures, one class each, told apart by `code` (mapped to gRPC in src/api/errors.ts). */

/** No record matches: not held by this archive (nor, for a hash, by its holders). */
export class RecordNotFoundError extends Error {
  readonly code = 'RECORD_NOT_FOUND'
  constructor (what: string) {
    super(`no ${what} is held by this archive`)
    this.name = 'RecordNotFoundError'
  }
}

/** A record read was asked of a node that keeps no records (it lacks the archive role). */
export class NotAnArchiveError extends Error {
  readonly code = 'NOT_AN_ARCHIVE'
  constructor () {
    super('this node keeps no records: it needs the archive role and mesh.enabled (ask an archive node)')
    this.name = 'NotAnArchiveError'
  }
}

/** A read request that names nothing, or names it wrongly (a hash that is not 64 hex digits). */
export class InvalidRecordRequestError extends Error {
  readonly code = 'INVALID_RECORD_REQUEST'
  constructor (message: string) {
    super(message)
    this.name = 'InvalidRecordRequestError'
  }
}
