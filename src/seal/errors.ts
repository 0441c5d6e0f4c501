/** A sealed box that is not one: too short, or of an unknown version. */
export class SealMalformedError extends Error {
  readonly code = 'SEAL_MALFORMED'
  constructor (reason: string) {
    super(`not a sealed box: ${reason}`)
    this.name = 'SealMalformedError'
  }
}

/** The box did not open: sealed to another key, for another context, or altered on the way. */
export class SealOpenError extends Error {
  readonly code = 'SEAL_OPEN_FAILED'
  constructor (options?: ErrorOptions) {
    super('the sealed box does not open with this node\'s key (sealed to another node, for another job, or altered)', options)
    this.name = 'SealOpenError'
  }
}

/** The recipient key cannot be sealed to (not an ed25519 key, or a small-order point). */
export class SealRecipientError extends Error {
  readonly code = 'SEAL_BAD_RECIPIENT'
  constructor (recipient: string, options?: ErrorOptions) {
    super(`cannot seal to ${recipient.slice(0, 64)}: not a usable ed25519 node key`, options)
    this.name = 'SealRecipientError'
  }
}
