import type { KeyObject } from 'node:crypto'

export interface Identity {
  /** libp2p PeerId of the key, base58btc (12D3KooW...). */
  nodeId: string
  /** Raw 32-byte ed25519 public key. */
  publicKey: Uint8Array
  /** node:crypto private key; never logged or serialised. */
  privateKey: KeyObject
  /** 32-byte seed, for deriving the libp2p key (issue 4). Never logged. */
  seed: Uint8Array
  /** Path the key was loaded from. */
  keyFile: string
}
