import * as grpc from '@grpc/grpc-js'
import { GuardianRejectedError } from '../guardian/errors.ts'

/** Raised by the API layer itself for a request it cannot accept as sent. */
export class InvalidRequestError extends Error {
  readonly code = 'INVALID_ARGUMENT'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'InvalidRequestError'
  }
}

export { JobNotFoundError } from '../gateway/errors.ts'

/** AssignJob on a node that takes no assignments (no worker role, or no mesh). */
export class NotAWorkerError extends Error {
  readonly code = 'NOT_A_WORKER'
  constructor () {
    super('this node takes no assignments: it needs the worker role and mesh.enabled')
    this.name = 'NotAWorkerError'
  }
}

/** ReportResult on a node that assigns no jobs (no scheduler or gateway role, or no mesh). */
export class NotASchedulerError extends Error {
  readonly code = 'NOT_A_SCHEDULER'
  constructor () {
    super('this node assigns no jobs, so it takes no results: it needs the scheduler or gateway role and mesh.enabled')
    this.name = 'NotASchedulerError'
  }
}

/** UpdateRoster on a node that holds no roster (the lead wires one only on mesh nodes). */
export class NoRosterError extends Error {
  readonly code = 'NO_ROSTER'
  constructor () {
    super('this node takes no roster: it needs mesh.enabled (mesh.admission configures the roster)')
    this.name = 'NoRosterError'
  }
}

/** AssignJob or ReportResult with a body that is not a signed envelope. */
export class InvalidAssignmentError extends Error {
  readonly code = 'INVALID_ASSIGNMENT'
  constructor (reason: string, options?: ErrorOptions) {
    super(`not a signed envelope: ${reason}`, options)
    this.name = 'InvalidAssignmentError'
  }
}

/**
 * The one table from a component's error code to a gRPC status. Components raise
 * errors with a `code`; nothing else in the API decides status codes.
 */
const STATUS_BY_CODE: Record<string, grpc.status> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  INVALID_INPUT: grpc.status.INVALID_ARGUMENT,
  INVALID_JOB_ID: grpc.status.INVALID_ARGUMENT,
  INVALID_CONTAINER_ID: grpc.status.INVALID_ARGUMENT,
  INVALID_DEADLINE: grpc.status.INVALID_ARGUMENT,
  INPUT_TOO_LARGE: grpc.status.INVALID_ARGUMENT,
  INVALID_CHAIN: grpc.status.INVALID_ARGUMENT,
  INVALID_POLICY: grpc.status.INVALID_ARGUMENT,
  NON_DETERMINISTIC: grpc.status.FAILED_PRECONDITION,
  NO_VALIDATORS: grpc.status.FAILED_PRECONDITION,
  UNKNOWN_CONTAINER: grpc.status.NOT_FOUND,
  NOT_FOUND: grpc.status.NOT_FOUND,
  JOB_NOT_FOUND: grpc.status.NOT_FOUND,
  QUEUE_FULL: grpc.status.RESOURCE_EXHAUSTED,
  GATEWAY_FULL: grpc.status.RESOURCE_EXHAUSTED,
  RATE_LIMITED: grpc.status.RESOURCE_EXHAUSTED,
  NO_EXECUTOR: grpc.status.FAILED_PRECONDITION,
  NOT_A_WORKER: grpc.status.FAILED_PRECONDITION,
  NOT_A_SCHEDULER: grpc.status.FAILED_PRECONDITION,
  INVALID_ASSIGNMENT: grpc.status.INVALID_ARGUMENT,
  MALFORMED_ENVELOPE: grpc.status.INVALID_ARGUMENT,
  ABORTED: grpc.status.CANCELLED,
  // A live output stream whose job ran again with another output (see Node.StreamJobOutput).
  OUTPUT_RESTARTED: grpc.status.ABORTED,
  // GuardianRejectedError carries the status name itself as its code (its `reason` says which rule).
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  GUARDIAN_REJECTED: grpc.status.PERMISSION_DENIED,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  GPU_UNAVAILABLE: grpc.status.FAILED_PRECONDITION,
  OCI_RUNTIME_UNAVAILABLE: grpc.status.FAILED_PRECONDITION,
  IMAGE_NOT_FOUND: grpc.status.FAILED_PRECONDITION,
  IMAGE_DIGEST_MISMATCH: grpc.status.FAILED_PRECONDITION,
  IMAGE_TAR_HASH_MISMATCH: grpc.status.FAILED_PRECONDITION,
  IMAGE_DOWNLOAD_FAILED: grpc.status.UNAVAILABLE,
  IMAGE_LOAD_FAILED: grpc.status.UNAVAILABLE,
  REGISTRY_PULL_FAILED: grpc.status.UNAVAILABLE,
  IMAGE_FETCH_TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  UNSAFE_USER: grpc.status.FAILED_PRECONDITION,
  CONTAINER_TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  OUTPUT_TOO_LARGE: grpc.status.RESOURCE_EXHAUSTED,
  INSUFFICIENT_RESOURCES: grpc.status.FAILED_PRECONDITION,
  NOT_STARTED: grpc.status.UNAVAILABLE,
  SERVICE_UNAVAILABLE: grpc.status.UNAVAILABLE,
  NO_WORKER: grpc.status.UNAVAILABLE,
  STOPPING: grpc.status.UNAVAILABLE,
  ENGINE_UNAVAILABLE: grpc.status.UNAVAILABLE,
  // A roster the node will not take as sent: the reason says what the operator must change.
  ROSTER_UNSIGNED: grpc.status.FAILED_PRECONDITION,
  ROSTER_UNKNOWN_OPERATOR: grpc.status.FAILED_PRECONDITION,
  ROSTER_WRONG_MESH: grpc.status.FAILED_PRECONDITION,
  ROSTER_EXPIRED: grpc.status.FAILED_PRECONDITION,
  ROSTER_STALE: grpc.status.FAILED_PRECONDITION,
  ROSTER_MALFORMED: grpc.status.INVALID_ARGUMENT,
  ROSTER_NOT_STARTED: grpc.status.UNAVAILABLE,
  NO_ROSTER: grpc.status.FAILED_PRECONDITION,
  // Subscriptions (src/subscriptions): a request or cancel as sent, then the Coordinator's rules.
  SUBSCRIPTION_BAD_SIGNATURE: grpc.status.INVALID_ARGUMENT,
  SUBSCRIPTION_WRONG_PAYLOAD_TYPE: grpc.status.INVALID_ARGUMENT,
  SUBSCRIPTION_MALFORMED: grpc.status.INVALID_ARGUMENT,
  INVALID_SUBSCRIPTION: grpc.status.INVALID_ARGUMENT,
  INVALID_SUBSCRIPTION_ID: grpc.status.INVALID_ARGUMENT,
  INVALID_SUBSCRIPTION_FILTER: grpc.status.INVALID_ARGUMENT,
  INVALID_SUBSCRIPTION_CANCEL: grpc.status.INVALID_ARGUMENT,
  SUBSCRIPTION_EXPIRED: grpc.status.FAILED_PRECONDITION,
  NOT_SUBSCRIPTION_OWNER: grpc.status.PERMISSION_DENIED,
  SUBSCRIPTION_NOT_FOUND: grpc.status.NOT_FOUND,
  SUBSCRIPTION_CANCELLED: grpc.status.FAILED_PRECONDITION,
  SUBSCRIPTION_NOT_ACTIVE: grpc.status.FAILED_PRECONDITION,
  INTERVAL_MISMATCH: grpc.status.FAILED_PRECONDITION,
  SUBSCRIPTION_COMPLETED: grpc.status.FAILED_PRECONDITION,
  INTERVAL_COMPLETED: grpc.status.FAILED_PRECONDITION,
  NODE_RESPONDED_ALREADY: grpc.status.FAILED_PRECONDITION,
  SUBSCRIPTION_EVENT_REFUSED: grpc.status.PERMISSION_DENIED,
  SUBSCRIPTIONS_NOT_STARTED: grpc.status.UNAVAILABLE,
  NO_SUBSCRIPTIONS: grpc.status.FAILED_PRECONDITION,
  // Archives (src/archive, src/records): reads of stored records.
  RECORD_NOT_FOUND: grpc.status.NOT_FOUND,
  NOT_AN_ARCHIVE: grpc.status.FAILED_PRECONDITION,
  INVALID_RECORD_REQUEST: grpc.status.INVALID_ARGUMENT,
  INVALID_PAGE_TOKEN: grpc.status.INVALID_ARGUMENT,
  RECORD_LOG_NOT_STARTED: grpc.status.UNAVAILABLE
}

/** Trailer naming the component's error code (e.g. INSUFFICIENT_RESOURCES), so clients need not parse details. */
export const ERROR_CODE_KEY = 'inframind-error-code'
/** Trailer naming the Guardian rule that refused a job (e.g. IP_NOT_ALLOWED). */
export const ERROR_REASON_KEY = 'inframind-error-reason'

/**
 * Longest status message sent. Components quote client input briefly (src/quote.ts); this is the
 * backstop that keeps any message, however built, far below the 8 KiB metadata limit of grpc-core
 * clients (over it they see RESOURCE_EXHAUSTED instead of the error).
 */
export const MAX_STATUS_DETAILS_CHARS = 1024

function bounded (details: string): string {
  return details.length <= MAX_STATUS_DETAILS_CHARS ? details : `${details.slice(0, MAX_STATUS_DETAILS_CHARS)}…(${details.length} chars)`
}

export function toServiceError (err: unknown): Partial<grpc.StatusObject> {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : ''
  const status = STATUS_BY_CODE[code]
  if (status !== undefined) {
    const metadata = new grpc.Metadata()
    metadata.set(ERROR_CODE_KEY, code)
    // Only the Guardian's reasons are a closed set of codes; other errors' `reason` is free text.
    if (err instanceof GuardianRejectedError) metadata.set(ERROR_REASON_KEY, err.reason)
    return { code: status, details: bounded(String((err as Error).message)), metadata }
  }
  const name = err instanceof Error ? err.name : typeof err
  return { code: grpc.status.INTERNAL, details: `internal error (${name}); the node logged the details` }
}

export function statusFor (code: string): grpc.status | undefined {
  return STATUS_BY_CODE[code]
}
