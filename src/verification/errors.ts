/** A verification policy a gateway will not honour: the message says what to change. */
export class InvalidPolicyError extends Error {
  readonly code = 'INVALID_POLICY'
  constructor (message: string) {
    super(message)
    this.name = 'InvalidPolicyError'
  }
}

/** Re-execution asked for a container that declares itself non-deterministic: never silently downgraded. */
export class NonDeterministicError extends Error {
  readonly code = 'NON_DETERMINISTIC'
  readonly containerIds: string[]
  constructor (containerIds: string[]) {
    super(`re-execution needs deterministic containers; ${containerIds.map((c) => JSON.stringify(c)).join(', ')} ${containerIds.length === 1 ? 'is' : 'are'} not (deterministic: false in its config): ask for verification "signature" or "none"`)
    this.name = 'NonDeterministicError'
    this.containerIds = containerIds
  }
}
