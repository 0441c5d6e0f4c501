/**
 * Why a roster was refused; told apart by `name` and `code`, never by message text. Each message
 * says what the operator should do about it. Values that may come from the network are clipped.
 */
import { clip } from '../envelope/errors.ts'

/** Not an operator-signed roster: wrong payload type, or a signature that does not verify. */
export class RosterUnsignedError extends Error {
  override name = 'RosterUnsignedError'
  readonly code = 'ROSTER_UNSIGNED'
  constructor (reason: string, options?: ErrorOptions) {
    super(`not a signed roster: ${reason}; sign the draft with "infra roster sign --operator-key FILE"`, options)
  }
}

/** Validly signed, but by a key this node does not trust as an operator. */
export class RosterUnknownOperatorError extends Error {
  override name = 'RosterUnknownOperatorError'
  readonly code = 'ROSTER_UNKNOWN_OPERATOR'
  /** Node id of the key that signed the roster. */
  readonly signer: string
  constructor (signer: string, operators: readonly string[], options?: ErrorOptions) {
    super(operators.length === 0
      ? `roster signed by ${signer}, but this node trusts no operator: set mesh.admission.operators to the operator id ("infra roster init" prints it)`
      : `roster signed by ${signer}, which is not in mesh.admission.operators; sign with an operator key, or add its id to mesh.admission.operators on every node`, options)
    this.signer = signer
  }
}

export class RosterWrongMeshError extends Error {
  override name = 'RosterWrongMeshError'
  readonly code = 'ROSTER_WRONG_MESH'
  readonly expected: string
  readonly actual: string
  constructor (expected: string, actual: string, options?: ErrorOptions) {
    super(`roster is for mesh "${clip(actual)}", this node is on mesh "${expected}" (mesh.admission.mesh_name); sign a roster whose draft says "mesh": "${expected}"`, options)
    this.expected = expected
    this.actual = actual
  }
}

export class RosterExpiredError extends Error {
  override name = 'RosterExpiredError'
  readonly code = 'ROSTER_EXPIRED'
  readonly expiresAtMs: number
  constructor (expiresAtMs: number, options?: ErrorOptions) {
    super(`roster expired at ${new Date(expiresAtMs).toISOString()}; sign a new one ("infra roster sign --expires 30d") and push it`, options)
    this.expiresAtMs = expiresAtMs
  }
}

/** Not newer than the roster held: equal versions are stale too, so a replay never counts as an update. */
export class RosterStaleError extends Error {
  override name = 'RosterStaleError'
  readonly code = 'ROSTER_STALE'
  readonly version: number
  readonly current: number
  constructor (version: number, current: number, options?: ErrorOptions) {
    super(`roster version ${version} is not newer than the version held (${current}); sign the draft again (each signing raises the version)`, options)
    this.version = version
    this.current = current
  }
}

/** Signed and trusted, but its content breaks the roster's rules (or it is not a Roster protobuf). */
export class RosterMalformedError extends Error {
  override name = 'RosterMalformedError'
  readonly code = 'ROSTER_MALFORMED'
  constructor (reason: string, options?: ErrorOptions) {
    super(`malformed roster: ${reason}`, options)
  }
}

/** The roster book was used before start() or after stop(). */
export class RosterNotStartedError extends Error {
  override name = 'RosterNotStartedError'
  readonly code = 'ROSTER_NOT_STARTED'
  constructor () {
    super('the roster is not loaded yet (the node is starting or stopping; retry shortly)')
  }
}

/** Asking a peer for its roster failed (no connection, no answer in time, not an envelope). */
export class RosterFetchError extends Error {
  override name = 'RosterFetchError'
  readonly code = 'ROSTER_FETCH_FAILED'
  readonly peer: string
  constructor (peer: string, reason: string, options?: ErrorOptions) {
    super(`could not get the roster of ${peer}: ${reason}`, options)
    this.peer = peer
  }
}

/** Every refusal verifyRoster can raise: what a caller handling "the roster was not taken" catches. */
export type RosterRefusal =
  RosterUnsignedError | RosterUnknownOperatorError | RosterWrongMeshError | RosterExpiredError | RosterStaleError | RosterMalformedError

export const ROSTER_REFUSAL_CODES = [
  'ROSTER_UNSIGNED', 'ROSTER_UNKNOWN_OPERATOR', 'ROSTER_WRONG_MESH', 'ROSTER_EXPIRED', 'ROSTER_STALE', 'ROSTER_MALFORMED'
] as const

export type RosterRefusalCode = typeof ROSTER_REFUSAL_CODES[number]

export function isRosterRefusal (err: unknown): err is RosterRefusal {
  const code = (err as { code?: unknown } | null)?.code
  return err instanceof Error && typeof code === 'string' && (ROSTER_REFUSAL_CODES as readonly string[]).includes(code)
}
