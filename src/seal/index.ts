/**
 * Sealed boxes: bytes that only the holder of one node's identity key can open, for client data
 * (inputs, outputs, origins) that must cross a party or a wire that should not read it. Anonymous
 * sender (the envelope around it says who sent it); byte layout in docs/ARCHITECTURE.md, "Sealed boxes":
 *
 *   box = 0x01 ‖ E (32: the sender's one-time X25519 public key) ‖ ChaCha20-Poly1305(k, nonce 0¹², aad = context)(plaintext) ‖ tag (16)
 *   k   = HKDF-SHA256(ikm = X25519(e, R), salt = E ‖ R, info = "inframind/seal/v1" ‖ 0x00 ‖ context, 32 bytes)
 *   R   = the recipient's X25519 key: the Montgomery form of its ed25519 node key (RFC 7748's map,
 *         as libsodium's crypto_sign_ed25519_pk_to_curve25519); its secret is the clamped first half of
 *         SHA-512(ed25519 seed) (crypto_sign_ed25519_sk_to_curve25519).
 *
 * A fresh key per box makes the fixed nonce safe. The context binds a box to its use (payload kind and
 * job id), so a box cannot be replayed into another job.
 */
import { createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519.js'
import type { Identity } from '../identity/types.ts'
import { publicKeyFromNodeId } from '../identity/index.ts'
import { SealMalformedError, SealOpenError, SealRecipientError } from './errors.ts'

export * from './errors.ts'

export const SEAL_VERSION = 0x01
const KEY_BYTES = 32
const TAG_BYTES = 16
/** version ‖ E ‖ tag: what a box adds to its plaintext. */
export const SEAL_OVERHEAD = 1 + KEY_BYTES + TAG_BYTES
const INFO = Buffer.from('inframind/seal/v1\0')
const NONCE = Buffer.alloc(12)
// DER wrappers that turn raw X25519 keys into node:crypto keys (RFC 8410).
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex')
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex')

/** The recipient's X25519 public key from its ed25519 public key. */
export function x25519PublicKey (ed25519PublicKey: Uint8Array): Uint8Array {
  return ed25519.utils.toMontgomery(ed25519PublicKey)
}

/** The X25519 secret of an ed25519 seed: the clamped first half of SHA-512(seed). */
export function x25519Secret (seed: Uint8Array): Uint8Array {
  const h = createHash('sha512').update(seed).digest().subarray(0, 32)
  h[0]! &= 248
  h[31]! &= 127
  h[31]! |= 64
  return new Uint8Array(h)
}

const contextBytes = (context: string | Uint8Array): Buffer => Buffer.from(context)

function deriveKey (shared: Buffer, ephemeral: Uint8Array, recipient: Uint8Array, context: Buffer): Buffer {
  if (shared.every((b) => b === 0)) throw new SealOpenError()
  const salt = Buffer.concat([ephemeral, recipient])
  return Buffer.from(hkdfSync('sha256', shared, salt, Buffer.concat([INFO, context]), KEY_BYTES))
}

/** Recipients remembered (a node seals to the same few schedulers, workers and validators over and over). */
const RECIPIENT_CACHE_SIZE = 1024
const recipients = new Map<string, { recipient: Uint8Array, recipientKey: KeyObject }>()

/** A node id's X25519 key, raw and as a node:crypto key: the Montgomery conversion is big-integer math in JS. */
function recipientOf (nodeId: string): { recipient: Uint8Array, recipientKey: KeyObject } {
  const hit = recipients.get(nodeId)
  if (hit !== undefined) return hit
  let entry: { recipient: Uint8Array, recipientKey: KeyObject }
  try {
    const recipient = x25519PublicKey(publicKeyFromNodeId(nodeId))
    entry = { recipient, recipientKey: createPublicKey({ key: Buffer.concat([X25519_SPKI, recipient]), format: 'der', type: 'spki' }) }
  } catch (err) {
    throw new SealRecipientError(nodeId, { cause: err })
  }
  if (recipients.size >= RECIPIENT_CACHE_SIZE) recipients.delete(recipients.keys().next().value as string)
  recipients.set(nodeId, entry)
  return entry
}

/** Seals `plaintext` to the node `recipientNodeId` (12D3KooW...) for `context`. */
export function sealTo (recipientNodeId: string, plaintext: Uint8Array, context: string | Uint8Array): Uint8Array {
  const { recipient, recipientKey } = recipientOf(recipientNodeId)
  const { publicKey, privateKey } = generateKeyPairSync('x25519')
  const ephemeral = publicKey.export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI.byteLength)
  const shared = diffieHellman({ privateKey, publicKey: recipientKey })
  if (shared.every((b) => b === 0)) throw new SealRecipientError(recipientNodeId)
  const ctx = contextBytes(context)
  const cipher = createCipheriv('chacha20-poly1305', deriveKey(shared, ephemeral, recipient, ctx), NONCE, { authTagLength: TAG_BYTES })
  cipher.setAAD(ctx, { plaintextLength: plaintext.byteLength })
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return new Uint8Array(Buffer.concat([Buffer.of(SEAL_VERSION), ephemeral, body, cipher.getAuthTag()]))
}

interface OpenKey { secret: KeyObject, publicKey: Uint8Array }
// Derived once per identity: opening is on every result and assignment.
const openKeys = new WeakMap<Identity, OpenKey>()

function openKeyOf (identity: Identity): OpenKey {
  let k = openKeys.get(identity)
  if (k === undefined) {
    k = {
      secret: createPrivateKey({ key: Buffer.concat([X25519_PKCS8, x25519Secret(identity.seed)]), format: 'der', type: 'pkcs8' }),
      publicKey: x25519PublicKey(identity.publicKey)
    }
    openKeys.set(identity, k)
  }
  return k
}

/** Opens a box sealed to `identity` for `context`; throws SealMalformedError or SealOpenError. */
export function openSealed (identity: Identity, box: Uint8Array, context: string | Uint8Array): Uint8Array {
  if (box.byteLength < SEAL_OVERHEAD) throw new SealMalformedError(`${box.byteLength} bytes, at least ${SEAL_OVERHEAD} expected`)
  if (box[0] !== SEAL_VERSION) throw new SealMalformedError(`version ${box[0]}, expected ${SEAL_VERSION}`)
  const key = openKeyOf(identity)
  const ephemeral = box.subarray(1, 1 + KEY_BYTES)
  const body = box.subarray(1 + KEY_BYTES, box.byteLength - TAG_BYTES)
  const tag = box.subarray(box.byteLength - TAG_BYTES)
  const ctx = contextBytes(context)
  try {
    const ephemeralKey = createPublicKey({ key: Buffer.concat([X25519_SPKI, ephemeral]), format: 'der', type: 'spki' })
    const shared = diffieHellman({ privateKey: key.secret, publicKey: ephemeralKey })
    const decipher = createDecipheriv('chacha20-poly1305', deriveKey(shared, ephemeral, key.publicKey, ctx), NONCE, { authTagLength: TAG_BYTES })
    decipher.setAAD(ctx, { plaintextLength: body.byteLength })
    decipher.setAuthTag(tag)
    return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]))
  } catch (err) {
    if (err instanceof SealOpenError) throw err
    throw new SealOpenError({ cause: err })
  }
}

/** The contexts a box is sealed for: a box made for one never opens as another. */
export const SEAL_CONTEXTS = {
  /** AssignmentSecret of job `id`, sealed to the assigned worker. */
  assignment: (jobId: string) => `inframind/assignment-secret/v1\0${jobId}`,
  /** The output of job `id`, sealed to the job's scheduler. */
  output: (jobId: string) => `inframind/job-output/v1\0${jobId}`,
  /** Bytes of job `id`'s output streamed while it runs (OutputChunkNotice), sealed to the job's scheduler. */
  outputChunk: (jobId: string) => `inframind/output-chunk/v1\0${jobId}`,
  /** A subscription response's output (SubscriptionResponse.sealed_output), sealed to the subscription's owner. */
  subscriptionOutput: (subscriptionId: string, jobId: string) => `inframind/subscription-output/v1\0${subscriptionId}\0${jobId}`
} as const
