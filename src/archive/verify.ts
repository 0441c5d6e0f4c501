/**
 * What an archive keeps, and how each kind is checked before it is stored and whenever it is read
 * (docs/ARCHIVE.md, "Record kinds"). Every envelope kind must verify offline, by itself: signature,
 * strict decoding of the payload, and a signer consistent with what the payload says.
 */
import { decodeEnvelope, encodeEnvelope, verifyEnvelope, type SignedEnvelope } from '../envelope/index.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import { decodeAttestation, decodeCertificate, decodeDisputeRecord, PAYLOAD_TYPES } from '../protocol/index.ts'
import { InvalidRecordError, type RecordIndex, type RecordInput } from '../records/index.ts'
import { verifyReceipt } from '../receipt/index.ts'
import { checkAttestation, checkDisputeEvidence, disagreeingValidators, verifyCertificate } from '../verification/index.ts'

/** The kinds an archive keeps. */
export const ARCHIVE_KINDS = ['receipt', 'attestation', 'certificate', 'dispute', 'output'] as const
export type ArchiveKind = typeof ARCHIVE_KINDS[number]

const codeOf = (err: unknown, fallback: string): string => {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : fallback
}

function envelope (kind: string, data: Uint8Array): SignedEnvelope {
  try {
    return decodeEnvelope(data)
  } catch (err) {
    throw new InvalidRecordError(kind, 'MALFORMED_ENVELOPE', (err as Error).message, { cause: err })
  }
}

function signer (kind: string, env: SignedEnvelope): string {
  try {
    return nodeIdFromPublicKey(env.publicKey)
  } catch (err) {
    throw new InvalidRecordError(kind, 'MALFORMED_ENVELOPE', (err as Error).message, { cause: err })
  }
}

const nodes = (...ids: string[]): string[] => [...new Set(ids.filter((id) => id !== ''))]

/** A receipt signed by the worker it names. */
function receipt (data: Uint8Array): RecordIndex {
  const checked = verifyReceipt(envelope('receipt', data))
  if (!checked.valid) throw new InvalidRecordError('receipt', checked.code, checked.reason)
  return { jobId: checked.receipt.jobId, nodeIds: nodes(checked.receipt.workerId, checked.receipt.schedulerId) }
}

/** An attestation signed by the validator it names, about a 32-byte receipt hash, not by the worker itself. */
function attestation (data: Uint8Array): RecordIndex {
  const env = envelope('attestation', data)
  let claimed
  try {
    verifyEnvelope(env, { payloadType: PAYLOAD_TYPES.attestation })
    claimed = decodeAttestation(env.payload)
  } catch (err) {
    throw new InvalidRecordError('attestation', codeOf(err, 'MALFORMED_ATTESTATION'), (err as Error).message, { cause: err })
  }
  if (claimed.receiptHash.byteLength !== 32) throw new InvalidRecordError('attestation', 'MALFORMED_ATTESTATION', 'receipt_hash must be 32 bytes')
  // Offline, the attestation is checked against what it says of itself; the receipt it judges may be elsewhere.
  const c = checkAttestation(env, { receiptHash: claimed.receiptHash, jobId: claimed.jobId, workerId: claimed.workerId })
  if (!c.ok) throw new InvalidRecordError('attestation', c.code, c.reason)
  return { jobId: c.attestation.jobId, nodeIds: nodes(c.attestation.validatorId, c.attestation.workerId) }
}

/** A certificate signed by its scheduler that passes verifyCertificate (every check it makes is offline). */
function certificate (data: Uint8Array): RecordIndex {
  const checked = verifyCertificate(envelope('certificate', data))
  if (!checked.valid) throw new InvalidRecordError('certificate', checked.code, checked.reason)
  return {
    jobId: checked.certificate.jobId,
    nodeIds: nodes(checked.certificate.schedulerId, checked.receipt.workerId, ...checked.attestations.map((a) => a.validatorId))
  }
}

/** A dispute record signed by its scheduler whose evidence holds by itself. */
function dispute (data: Uint8Array): RecordIndex {
  const env = envelope('dispute', data)
  let record
  try {
    verifyEnvelope(env, { payloadType: PAYLOAD_TYPES.dispute })
    record = decodeDisputeRecord(env.payload)
  } catch (err) {
    throw new InvalidRecordError('dispute', codeOf(err, 'MALFORMED_DISPUTE'), (err as Error).message, { cause: err })
  }
  const by = signer('dispute', env)
  if (record.schedulerId !== by) throw new InvalidRecordError('dispute', 'SIGNER_MISMATCH', `dispute names scheduler ${record.schedulerId.slice(0, 64)} but was signed by ${by}`)
  const why = checkDisputeEvidence(record)
  if (why !== undefined) throw new InvalidRecordError('dispute', 'EVIDENCE_INVALID', why)
  // checkDisputeEvidence has verified the receipt.
  const r = record.receipt !== null ? verifyReceipt(record.receipt) : undefined
  const worker = r?.valid === true ? r.receipt.workerId : ''
  return { jobId: record.jobId, nodeIds: nodes(record.schedulerId, worker, ...disagreeingValidators(record)) }
}

/** The archive's verify function for its record log: the index fields of a valid record, else InvalidRecordError. */
export function verifyArchiveRecord (kind: string, data: Uint8Array): RecordIndex {
  switch (kind) {
    case 'receipt': return receipt(data)
    case 'attestation': return attestation(data)
    case 'certificate': return certificate(data)
    case 'dispute': return dispute(data)
    // An output is named by its hash, which the log checks; there is nothing else to check.
    case 'output': return { jobId: '', nodeIds: [] }
    default: throw new InvalidRecordError(kind, 'UNKNOWN_KIND', `an archive keeps ${ARCHIVE_KINDS.join(', ')}`)
  }
}

/**
 * A record and the signed records it carries, each kept on its own: a dispute record's (or a
 * certificate's) receipt and attestations, so a job's receipt is found by its job id even when only
 * the dispute or certificate reached this archive. Best effort: what does not decode is left to verify.
 */
export function withEmbedded (kind: string, data: Uint8Array): RecordInput[] {
  const out: RecordInput[] = [{ kind, data }]
  if (kind !== 'dispute' && kind !== 'certificate') return out
  try {
    const env = decodeEnvelope(data)
    const inner = kind === 'dispute' ? decodeDisputeRecord(env.payload) : decodeCertificate(env.payload)
    if (inner.receipt !== null) out.push({ kind: 'receipt', data: encodeEnvelope(inner.receipt) })
    for (const a of inner.attestations) out.push({ kind: 'attestation', data: encodeEnvelope(a) })
  } catch {
    // The record itself is refused by verify; nothing embedded is taken from it.
  }
  return out
}
