/** Install failures; told apart by `code`. Each message says what to do about it. */

export type InstallErrorCode =
  | 'USAGE' // bad flags: exit 2
  | 'NOT_ROOT' // a real install writes /etc, /opt and /var: it needs root
  | 'BAD_SOURCE' // the package to install from is incomplete (no node_modules, ...)
  | 'NODE_NOT_FOUND' // no Node >= 22.18 for the unit to run
  | 'NOT_OURS' // a path the install would write holds something it did not write
  | 'CONFIG_INVALID' // the existing (or default) config does not validate
  | 'IDENTITY_FAILED' // the key could not be created or read
  | 'COMMAND_FAILED' // apt-get, useradd, systemctl, ... exited non-zero
  | 'WRITE_FAILED' // a file or folder could not be written (read-only, full, permissions)

export class InstallError extends Error {
  override name = 'InstallError'
  readonly code: InstallErrorCode
  constructor (code: InstallErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
  }
}
