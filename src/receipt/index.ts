import { createHash, timingSafeEqual } from 'node:crypto'
import { clip } from '../envelope/errors.ts'
import type { Identity } from '../identity/types.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { Receipt, ReceiptStatus, ReceiptStep } from './types.ts'
import { signEnvelope, uvarint, verifyEnvelope } from '../envelope/index.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import { MalformedReceiptError } from './errors.ts'
import { decodeReceipt, encodeReceipt } from './codec.ts'
import { PAYLOAD_TYPES } from '../protocol/constants.ts'

export type { Receipt, ReceiptStatus, ReceiptStep }
export * from './errors.ts'
export { encodeReceipt, decodeReceipt }

export const RECEIPT_PAYLOAD_TYPE = PAYLOAD_TYPES.receipt
/** Domain tag of computeJobHash, so a job hash can never collide with any other sha256 we compute. */
export const JOB_HASH_DOMAIN = 'inframind-job-v1'

export function sha256 (bytes: Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(bytes).digest()
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength)
}

/**
 * sha256 of utf8(JOB_HASH_DOMAIN) ‖ lp(utf8(jobId)) ‖ uvarint(containerIds.length) ‖ lp(utf8(id)) for each id ‖ lp(inputHash),
 * where lp(x) = uvarint(len(x)) ‖ x. Every part is length-prefixed, so no two different jobs share an encoding
 * (e.g. ["ab","c"] and ["a","bc"] differ).
 */
export function computeJobHash (jobId: string, containerIds: string[], inputHash: Uint8Array): Uint8Array {
  const h = createHash('sha256').update(JOB_HASH_DOMAIN, 'utf8')
  const lp = (bytes: Uint8Array): void => { h.update(uvarint(bytes.length)).update(bytes) }
  lp(Buffer.from(jobId, 'utf8'))
  h.update(uvarint(containerIds.length))
  for (const id of containerIds) lp(Buffer.from(id, 'utf8'))
  lp(inputHash)
  const digest = h.digest()
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength)
}

/**
 * The hash an Attestation names a receipt by: sha256 of the envelope's payload, the exact Receipt
 * bytes the worker signed. Bytes, not the decoded receipt, so no re-encoding can change it.
 */
export function receiptHash (env: SignedEnvelope): Uint8Array {
  return sha256(env.payload)
}

/** Encodes and signs; the receipt's workerId must be the signer's node id (verifiers check exactly that). */
export function signReceipt (identity: Identity, receipt: Receipt): SignedEnvelope {
  if (receipt.workerId !== identity.nodeId) {
    throw new MalformedReceiptError('worker_id', `must be the signing node's id ${identity.nodeId}`)
  }
  return signEnvelope(identity, RECEIPT_PAYLOAD_TYPE, encodeReceipt(receipt))
}

export type ReceiptVerification =
  | { valid: true, receipt: Receipt }
  | { valid: false, reason: string, code: ReceiptInvalidCode }

/** Why a receipt is invalid; the first five are the `code`s of the envelope/receipt errors. */
export type ReceiptInvalidCode =
  | 'MALFORMED_ENVELOPE' | 'PAYLOAD_TYPE_MISMATCH' | 'INVALID_SIGNATURE' | 'MALFORMED_RECEIPT'
  | 'WORKER_MISMATCH' | 'OUTPUT_MISMATCH' | 'INPUT_MISMATCH'

export interface VerifyReceiptOptions {
  /** The job output: its sha256 must equal the receipt's output_hash. */
  output?: Uint8Array
  /** The job input: its sha256 must equal the receipt's input_hash. */
  input?: Uint8Array
}

/** Checks type, signature, payload, signer = worker and (optionally) output/input hashes. Never throws. */
export function verifyReceipt (env: SignedEnvelope, opts: VerifyReceiptOptions = {}): ReceiptVerification {
  let receipt: Receipt
  try {
    verifyEnvelope(env, { payloadType: RECEIPT_PAYLOAD_TYPE })
    receipt = decodeReceipt(env.payload)
  } catch (err) {
    return invalid(err)
  }
  let signer: string
  try {
    signer = nodeIdFromPublicKey(env.publicKey)
  } catch (err) {
    return invalid(err)
  }
  if (receipt.workerId !== signer) {
    return { valid: false, code: 'WORKER_MISMATCH', reason: `receipt names worker ${clip(receipt.workerId)} but was signed by ${signer}` }
  }
  if (opts.output !== undefined && !sameBytes(sha256(opts.output), receipt.outputHash)) {
    return { valid: false, code: 'OUTPUT_MISMATCH', reason: 'sha256 of the output does not match the receipt\'s output_hash' }
  }
  if (opts.input !== undefined && !sameBytes(sha256(opts.input), receipt.inputHash)) {
    return { valid: false, code: 'INPUT_MISMATCH', reason: 'sha256 of the input does not match the receipt\'s input_hash' }
  }
  return { valid: true, receipt }
}

const KNOWN_CODES: ReadonlySet<string> = new Set(['MALFORMED_ENVELOPE', 'PAYLOAD_TYPE_MISMATCH', 'INVALID_SIGNATURE', 'MALFORMED_RECEIPT'])

function invalid (err: unknown): { valid: false, reason: string, code: ReceiptInvalidCode } {
  const code = (err as { code?: unknown } | null)?.code
  const reason = err instanceof Error ? err.message : String(err)
  // Anything unexpected still means "not a receipt we can trust", never a crash.
  return { valid: false, reason, code: typeof code === 'string' && KNOWN_CODES.has(code) ? code as ReceiptInvalidCode : 'MALFORMED_ENVELOPE' }
}

/** Equal length and equal bytes (in constant time for equal lengths: hashes and signatures are compared here). */
export function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}
