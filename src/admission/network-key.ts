/**
 * The private mesh's pre-shared key, in libp2p's swarm key file format (what @libp2p/pnet and other
 * libp2p implementations read):
 *
 *   /key/swarm/psk/1.0.0/\n/base16/\n<64 hex digits: 32 random bytes>\n
 *
 * Every node of a private mesh holds the same file (mode 0600); a node without it cannot open a
 * connection to any of them.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'

const HEADER = '/key/swarm/psk/1.0.0/\n/base16/\n'
const KEY_HEX = /^[0-9a-fA-F]{64}$/

/** The key file is missing, unreadable, malformed or readable by others. */
export class NetworkKeyError extends Error {
  readonly code: 'NETWORK_KEY_MISSING' | 'NETWORK_KEY_INVALID' | 'NETWORK_KEY_INSECURE'
  constructor (code: NetworkKeyError['code'], message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'NetworkKeyError'
    this.code = code
  }
}

/** A new swarm key file's bytes (32 random bytes). */
export function newNetworkKey (): Uint8Array {
  return new TextEncoder().encode(`${HEADER}${randomBytes(32).toString('hex')}\n`)
}

/** Writes a new key file (0600); refuses to replace an existing one (that would split the mesh). */
export function createNetworkKeyFile (file: string): Uint8Array {
  const key = newNetworkKey()
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  writeFileSync(file, key, { mode: 0o600, flag: 'wx' })
  return key
}

/** Reads and checks a key file: the format above, and not readable by group or others. */
export function readNetworkKeyFile (file: string): Uint8Array {
  let text: string
  try {
    const mode = statSync(file).mode & 0o077
    if (mode !== 0) {
      throw new NetworkKeyError('NETWORK_KEY_INSECURE', `mesh key file ${file} is readable by other users (mode ${(statSync(file).mode & 0o777).toString(8)}): run chmod 600 ${file}`)
    }
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if (err instanceof NetworkKeyError) throw err
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NetworkKeyError('NETWORK_KEY_MISSING', `mesh key file ${file} does not exist: copy the mesh's key file from its operator (infra roster init creates one for a new mesh), or set mesh.admission.mode: open`, { cause: err })
    }
    throw new NetworkKeyError('NETWORK_KEY_INVALID', `mesh key file ${file} cannot be read: ${(err as Error).message}`, { cause: err })
  }
  const body = text.startsWith(HEADER) ? text.slice(HEADER.length).trim() : undefined
  if (body === undefined || !KEY_HEX.test(body)) {
    throw new NetworkKeyError('NETWORK_KEY_INVALID', `mesh key file ${file} is not a swarm key ("/key/swarm/psk/1.0.0/", "/base16/", then 64 hex digits)`)
  }
  return new TextEncoder().encode(`${HEADER}${body.toLowerCase()}\n`)
}

/**
 * The key a private-mesh node starts with: the file's, or, for the first node of a new mesh (no
 * bootstrap peers to join), a new one written to the file. A node told to join peers never invents a
 * key: it could only ever reach itself.
 */
export function networkKeyFor (file: string, joining: boolean): { key: Uint8Array, created: boolean } {
  try {
    return { key: readNetworkKeyFile(file), created: false }
  } catch (err) {
    if (joining || (err as NetworkKeyError).code !== 'NETWORK_KEY_MISSING') throw err
    return { key: createNetworkKeyFile(file), created: true }
  }
}
