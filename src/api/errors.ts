import * as grpc from '@grpc/grpc-js'

/** Raised by the API layer itself for a request it cannot accept as sent. */
export class InvalidRequestError extends Error {
  readonly code = 'INVALID_ARGUMENT'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'InvalidRequestError'
  }
}

export class JobNotFoundError extends Error {
  readonly code = 'JOB_NOT_FOUND'
  constructor (jobId: string) {
    super(`no job with id "${jobId}" on this node (list jobs with ListJobs or \`infra jobs\`)`)
    this.name = 'JobNotFoundError'
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
  INVALID_DEADLINE: grpc.status.INVALID_ARGUMENT,
  INPUT_TOO_LARGE: grpc.status.INVALID_ARGUMENT,
  UNKNOWN_CONTAINER: grpc.status.NOT_FOUND,
  JOB_NOT_FOUND: grpc.status.NOT_FOUND,
  QUEUE_FULL: grpc.status.RESOURCE_EXHAUSTED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  GUARDIAN_REJECTED: grpc.status.PERMISSION_DENIED,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  GPU_UNAVAILABLE: grpc.status.FAILED_PRECONDITION,
  IMAGE_NOT_FOUND: grpc.status.FAILED_PRECONDITION,
  IMAGE_DIGEST_MISMATCH: grpc.status.FAILED_PRECONDITION,
  UNSAFE_USER: grpc.status.FAILED_PRECONDITION,
  CONTAINER_TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  OUTPUT_TOO_LARGE: grpc.status.RESOURCE_EXHAUSTED,
  INSUFFICIENT_RESOURCES: grpc.status.FAILED_PRECONDITION,
  NOT_STARTED: grpc.status.UNAVAILABLE,
  STOPPING: grpc.status.UNAVAILABLE,
  ENGINE_UNAVAILABLE: grpc.status.UNAVAILABLE
}

export function toServiceError (err: unknown): Partial<grpc.StatusObject> {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : ''
  const status = STATUS_BY_CODE[code]
  if (status !== undefined) return { code: status, details: (err as Error).message }
  const name = err instanceof Error ? err.name : typeof err
  return { code: grpc.status.INTERNAL, details: `internal error (${name}); the node logged the details` }
}

export function statusFor (code: string): grpc.status | undefined {
  return STATUS_BY_CODE[code]
}
