/**
 * A signed message: signature = ed25519 over a domain-separated (payloadType, payload). The shape is
 * inframind.v1.SignedEnvelope as generated from envelope.proto; payload is the exact signed bytes,
 * publicKey the raw 32-byte ed25519 key, signature 64 bytes.
 */
export type { SignedEnvelope } from '../protocol/generated.ts'
