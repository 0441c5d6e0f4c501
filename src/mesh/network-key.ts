/**
 * The mesh's pre-shared key in libp2p's swarm key format (what go-ipfs and js-libp2p's pnet read):
 *
 *   /key/swarm/psk/1.0.0/
 *   /base16/
 *   <64 hex digits: 32 random bytes>
 */
import { generateKey } from '@libp2p/pnet'

const HEADER = '/key/swarm/psk/1.0.0/'
const ENCODING = '/base16/'
/** Header + encoding line + 64 hex digits, with the two newlines. */
const KEY_FILE_BYTES = HEADER.length + ENCODING.length + 64 + 2

/** A network key that is not a libp2p swarm key (pnet would refuse it with a message naming neither file nor line). */
export class InvalidNetworkKeyError extends Error {
  readonly code = 'INVALID_NETWORK_KEY'
  constructor (reason: string) {
    super(`not a libp2p swarm key (expected "${HEADER}", "${ENCODING}" and 64 hex digits on three lines): ${reason}`)
    this.name = 'InvalidNetworkKeyError'
  }
}

/** Throws InvalidNetworkKeyError unless `bytes` is a swarm key pnet accepts (trailing whitespace allowed). */
export function assertNetworkKey (bytes: Uint8Array): void {
  const lines = new TextDecoder().decode(bytes).trimEnd().split(/\r\n|\r|\n/)
  if (lines.length !== 3) throw new InvalidNetworkKeyError(`${lines.length} lines`)
  if (lines[0] !== HEADER) throw new InvalidNetworkKeyError('first line')
  if (lines[1] !== ENCODING) throw new InvalidNetworkKeyError('second line')
  if (!/^[0-9a-fA-F]{64}$/.test(lines[2] ?? '')) throw new InvalidNetworkKeyError('third line is not 64 hex digits')
}

/** A fresh random network key, as the contents of a swarm key file. */
export function generateNetworkKey (): Uint8Array {
  const key = new Uint8Array(KEY_FILE_BYTES)
  generateKey(key)
  return key
}
