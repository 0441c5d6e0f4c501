/** A signed message: signature = ed25519 over a domain-separated (payloadType, payload). */
export interface SignedEnvelope {
  payloadType: string
  /** The exact signed bytes; never re-encoded before verifying. */
  payload: Uint8Array
  /** Raw 32-byte ed25519 public key. */
  publicKey: Uint8Array
  /** 64-byte ed25519 signature. */
  signature: Uint8Array
}
