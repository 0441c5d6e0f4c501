import { randomBytes } from 'node:crypto'
import {
  closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync
} from 'node:fs'
import { homedir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import type { Identity } from './types.ts'
import { decodeKeyFile, encodeKeyFile, identityFromSeed } from './key-file.ts'
import {
  IdentityExistsError, IdentityNotFoundError, InsecureKeyFileError, InvalidIdentityError, KeyFileWriteError
} from './errors.ts'

export type { Identity }
export * from './errors.ts'
export { nodeIdFromPublicKey, publicKeyFromNodeId, nodeIdMatches } from './peer-id.ts'
export { identityFromSeed, privateKeyFromSeed } from './key-file.ts'

/** Where the key lives when neither --key nor config.yaml says otherwise. */
export const DEFAULT_KEY_FILE = '~/.inframind/identity.key'
/** A PKCS#8 ed25519 PEM is ~120 bytes; anything far larger is not a key file and is not read whole. */
const MAX_KEY_FILE_BYTES = 64 * 1024

/** Expands a leading `~` / `~/` to the home directory (HOME from `env` when given, else the OS's). */
export function expandHome (path: string, env: NodeJS.ProcessEnv = process.env): string {
  if (path !== '~' && !path.startsWith('~/')) return path
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir()
  return path === '~' ? home : join(home, path.slice(2))
}

function absoluteKeyPath (keyFile: string): string {
  return resolve(expandHome(keyFile))
}

/** Creates a new random identity and writes it 0600 (folder 0700); refuses to replace a key unless `force`. */
export function generateIdentity (keyFile: string = DEFAULT_KEY_FILE, opts: { force?: boolean } = {}): Identity {
  const file = absoluteKeyPath(keyFile)
  const identity = identityFromSeed(randomBytes(32), file)
  writeKeyFileAtomically(file, encodeKeyFile(identity), opts.force === true)
  return identity
}

export function loadIdentity (keyFile: string = DEFAULT_KEY_FILE): Identity {
  const file = absoluteKeyPath(keyFile)
  let mode: number
  let size: number
  try {
    const st = statSync(file)
    if (!st.isFile()) throw new InvalidIdentityError(file, 'not a regular file')
    mode = st.mode & 0o777
    size = st.size
  } catch (err) {
    if (err instanceof InvalidIdentityError) throw err
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new IdentityNotFoundError(file, { cause: err })
    throw new InvalidIdentityError(file, (err as Error).message, { cause: err })
  }
  // Same rule as ssh: any group/other permission on a private key is refused, not just warned about.
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) throw new InsecureKeyFileError(file, mode)
  if (size > MAX_KEY_FILE_BYTES) throw new InvalidIdentityError(file, `file is ${size} bytes, too large to be a key`)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new InvalidIdentityError(file, (err as Error).message, { cause: err })
  }
  try {
    return decodeKeyFile(text, file)
  } catch (err) {
    throw new InvalidIdentityError(file, (err as Error).message, { cause: err })
  }
}

/** Loads the key, creating it on first launch; `created` tells the caller to announce the new id. */
export function loadOrCreateIdentity (keyFile: string = DEFAULT_KEY_FILE): { identity: Identity, created: boolean } {
  try {
    return { identity: loadIdentity(keyFile), created: false }
  } catch (err) {
    if (!(err instanceof IdentityNotFoundError)) throw err
  }
  try {
    return { identity: generateIdentity(keyFile), created: true }
  } catch (err) {
    // Another process created it between our load and write: use theirs.
    if (err instanceof IdentityExistsError) return { identity: loadIdentity(keyFile), created: false }
    throw err
  }
}

/*
 * Write to a temp file in the same folder, fsync, then link (no-clobber) or rename (force) into place:
 * a crash never leaves a half-written key, and two nodes starting at once never both win.
 */
function writeKeyFileAtomically (file: string, text: string, force: boolean): void {
  const dir = dirname(file)
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const fd = openSync(tmp, 'wx', 0o600)
    try {
      writeSync(fd, text)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  } catch (err) {
    rmSync(tmp, { force: true })
    throw new KeyFileWriteError(file, (err as Error).message, { cause: err })
  }
  try {
    if (force) {
      renameSync(tmp, file)
    } else {
      try {
        linkSync(tmp, file)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'EEXIST') throw new IdentityExistsError(file, { cause: err })
        // Filesystems without hard links: fall back to check-then-rename (a narrow race, only on such filesystems).
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err
        if (exists(file)) throw new IdentityExistsError(file)
        renameSync(tmp, file)
      }
    }
    syncDir(dir)
  } catch (err) {
    if (err instanceof IdentityExistsError) throw err
    throw new KeyFileWriteError(file, (err as Error).message, { cause: err })
  } finally {
    rmSync(tmp, { force: true })
  }
}

function exists (file: string): boolean {
  try {
    statSync(file)
    return true
  } catch {
    return false
  }
}

function syncDir (dir: string): void {
  try {
    const fd = openSync(dir, 'r')
    try { fsyncSync(fd) } finally { closeSync(fd) }
  } catch {
    // Directory fsync is best effort (not supported everywhere); the file itself is already synced.
  }
}
