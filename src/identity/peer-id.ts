import { base58btcDecode, base58btcEncode } from './base58.ts'
import { InvalidNodeIdError } from './errors.ts'

/*
 * A libp2p Ed25519 PeerId is the identity multihash of the protobuf-encoded public key:
 *   0x00 (identity) 0x24 (length 36) | 0x08 0x01 (KeyType = Ed25519) 0x12 0x20 (Data, 32 bytes) | key
 * written in base58btc without a multibase prefix, which is why every id starts "12D3KooW".
 */
const PREFIX = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20)
const ID_BYTES = PREFIX.length + 32

export function nodeIdFromPublicKey (publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new TypeError('an ed25519 public key is 32 bytes')
  }
  const bytes = new Uint8Array(ID_BYTES)
  bytes.set(PREFIX, 0)
  bytes.set(publicKey, PREFIX.length)
  return base58btcEncode(bytes)
}

/** The raw 32-byte ed25519 key inside a node id; throws InvalidNodeIdError for anything else (RSA/secp256k1 ids included). */
export function publicKeyFromNodeId (id: string): Uint8Array {
  if (typeof id !== 'string' || id.length === 0) throw new InvalidNodeIdError(String(id), 'empty')
  // A 38-byte value is at most 52 base58 digits; stop garbage early.
  if (id.length > 60) throw new InvalidNodeIdError(id, 'too long for an Ed25519 PeerId')
  const bytes = base58btcDecode(id)
  if (bytes === undefined) throw new InvalidNodeIdError(id, 'not base58btc')
  if (bytes.length !== ID_BYTES || PREFIX.some((b, i) => bytes[i] !== b)) {
    throw new InvalidNodeIdError(id, 'not an Ed25519 libp2p PeerId (expected 12D3KooW…)')
  }
  return bytes.slice(PREFIX.length)
}

/** True when `id` is the node id of `publicKey` (constant shape, no exceptions). */
export function nodeIdMatches (id: string, publicKey: Uint8Array): boolean {
  try {
    return nodeIdFromPublicKey(publicKey) === id
  } catch {
    return false
  }
}
