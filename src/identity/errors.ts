/** Failures of identity handling; told apart by `name` and `code`, never by message text. */

export class IdentityExistsError extends Error {
  override name = 'IdentityExistsError'
  readonly code = 'IDENTITY_EXISTS'
  readonly file: string
  constructor (file: string, options?: ErrorOptions) {
    super(`a key already exists at ${file}; pass --force to replace it (this changes the node id)`, options)
    this.file = file
  }
}

export class IdentityNotFoundError extends Error {
  override name = 'IdentityNotFoundError'
  readonly code = 'IDENTITY_NOT_FOUND'
  readonly file: string
  constructor (file: string, options?: ErrorOptions) {
    super(`no key file at ${file}; run "infra init --keygen" to create one`, options)
    this.file = file
  }
}

export class InvalidIdentityError extends Error {
  override name = 'InvalidIdentityError'
  readonly code = 'INVALID_IDENTITY'
  readonly file: string
  constructor (file: string, reason: string, options?: ErrorOptions) {
    super(`key file ${file} is not usable: ${reason}`, options)
    this.file = file
  }
}

export class InsecureKeyFileError extends Error {
  override name = 'InsecureKeyFileError'
  readonly code = 'INSECURE_KEY_FILE'
  readonly file: string
  readonly mode: number
  constructor (file: string, mode: number, options?: ErrorOptions) {
    super(`key file ${file} has mode ${mode.toString(8).padStart(4, '0')}, so other users can access it; run: chmod 600 ${file}`, options)
    this.file = file
    this.mode = mode
  }
}

export class InvalidNodeIdError extends Error {
  override name = 'InvalidNodeIdError'
  readonly code = 'INVALID_NODE_ID'
  constructor (id: string, reason: string, options?: ErrorOptions) {
    // Node ids arrive from the network: cap what we echo back.
    super(`invalid node id "${id.length > 80 ? id.slice(0, 80) + '…' : id}": ${reason}`, options)
  }
}

export class KeyFileWriteError extends Error {
  override name = 'KeyFileWriteError'
  readonly code = 'KEY_FILE_WRITE'
  readonly file: string
  constructor (file: string, reason: string, options?: ErrorOptions) {
    super(`cannot write key file ${file}: ${reason}`, options)
    this.file = file
  }
}
