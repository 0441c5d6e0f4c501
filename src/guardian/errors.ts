import type { JobOrigin } from '../runtime/types.ts'
import { quote } from '../quote.ts'

/** Which rule refused a job; stable, so metrics and clients can tell rejections apart. */
export type GuardianReason =
  | 'NO_CONTAINERS'
  | 'UNKNOWN_CONTAINER'
  | 'NOT_EXTERNAL'
  | 'IP_NOT_ALLOWED'
  | 'PEER_NOT_ALLOWED'
  | 'DELEGATE_NOT_ALLOWED'
  | 'PROOF_UNSUPPORTED'

/**
 * The error code (mapped to a gRPC status by the API's one table) of each reason. A missing container
 * list is a malformed request and an unknown container is NOT_FOUND, as before the Guardian existed;
 * a missing proof capability is a precondition of the node, not a permission.
 */
export const GUARDIAN_CODES: Readonly<Record<GuardianReason, 'INVALID_ARGUMENT' | 'NOT_FOUND' | 'PERMISSION_DENIED' | 'FAILED_PRECONDITION'>> = {
  NO_CONTAINERS: 'INVALID_ARGUMENT',
  UNKNOWN_CONTAINER: 'NOT_FOUND',
  NOT_EXTERNAL: 'PERMISSION_DENIED',
  IP_NOT_ALLOWED: 'PERMISSION_DENIED',
  PEER_NOT_ALLOWED: 'PERMISSION_DENIED',
  DELEGATE_NOT_ALLOWED: 'PERMISSION_DENIED',
  PROOF_UNSUPPORTED: 'FAILED_PRECONDITION'
}

/**
 * A job the Guardian refused. Carries the origin for the caller's own diagnostics: log it at debug
 * level at most, and never put `origin` into metrics or events (only `reason` and `containerId`).
 */
export class GuardianRejectedError extends Error {
  readonly code: (typeof GUARDIAN_CODES)[GuardianReason]
  readonly reason: GuardianReason
  /** The container the failed rule is about ('' for NO_CONTAINERS). */
  readonly containerId: string
  readonly origin: JobOrigin

  constructor (reason: GuardianReason, containerId: string, origin: JobOrigin, detail: string) {
    super(`guardian rejected the job (${reason}): ${detail} [origin: ${describeOrigin(origin)}]`)
    this.name = 'GuardianRejectedError'
    this.code = GUARDIAN_CODES[reason]
    this.reason = reason
    this.containerId = containerId
    this.origin = origin
  }
}

function describeOrigin (origin: JobOrigin): string {
  const parts = [`ip ${origin.ip === '' ? '(unknown)' : origin.ip}`]
  // The delegate is whatever the client wrote; a peer id is checked only later, if at all.
  if (origin.peerId !== '') parts.push(`peer ${quote(origin.peerId)}`)
  if (origin.delegate !== '') parts.push(`delegate ${quote(origin.delegate)}`)
  return parts.join(', ')
}
