import { decodeEnvelope, verifyEnvelope } from '../envelope/index.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import { verifyReceipt } from '../receipt/index.ts'
import { PAYLOAD_TYPES, TOPICS } from './constants.ts'
import {
  decodeAck, decodeAssignment, decodeHeartbeat, decodeJobResult,
  type Assignment, type AssignmentAck, type Heartbeat, type JobResultNotice
} from './messages.ts'

/** Why a gossip message was rejected; also the label of the rejection counter. */
export type RejectCode =
  | 'OVERSIZED' | 'MALFORMED_ENVELOPE' | 'WRONG_PAYLOAD_TYPE' | 'BAD_SIGNATURE' | 'SIGNER_MISMATCH'
  | 'MALFORMED_PAYLOAD' | 'STALE' | 'INVALID_CONTENT'

export type Verdict<T> =
  | { ok: true, value: T, envelope: SignedEnvelope, signer: string }
  | { ok: false, code: RejectCode, reason: string }

export interface ValidateOptions {
  maxBytes: number
  maxSkewMs: number
  now: number
}

interface Rule<T> {
  payloadType: string
  decode: (bytes: Uint8Array) => T
  /** The node the payload claims to come from: must be the envelope's signer. */
  author: (msg: T) => string
  at: (msg: T) => number
  /** Further checks on the decoded content; a reason when it is invalid. */
  check?: (msg: T, signer: string) => string | undefined
}

const RULES: Record<string, Rule<any>> = {
  [TOPICS.heartbeats]: {
    payloadType: PAYLOAD_TYPES.heartbeat,
    decode: decodeHeartbeat,
    author: (m: Heartbeat) => m.nodeId,
    at: (m: Heartbeat) => m.atMs
  } satisfies Rule<Heartbeat>,
  [TOPICS.assignments]: {
    payloadType: PAYLOAD_TYPES.assignment,
    decode: decodeAssignment,
    author: (m: Assignment) => m.schedulerId,
    at: (m: Assignment) => m.issuedAtMs,
    check: (m: Assignment) => m.jobId === '' ? 'assignment without a job id' : (m.containers.length === 0 ? 'assignment without containers' : undefined)
  } satisfies Rule<Assignment>,
  [TOPICS.acks]: {
    payloadType: PAYLOAD_TYPES.ack,
    decode: decodeAck,
    author: (m: AssignmentAck) => m.workerId,
    at: (m: AssignmentAck) => m.atMs
  } satisfies Rule<AssignmentAck>,
  [TOPICS.receipts]: {
    payloadType: PAYLOAD_TYPES.jobResult,
    decode: decodeJobResult,
    // The notice and the receipt inside it must both come from the worker.
    author: (m: JobResultNotice) => m.receipt === null ? '' : safeNodeId(m.receipt.publicKey),
    at: (m: JobResultNotice) => m.atMs,
    check: (m: JobResultNotice, signer: string) => {
      if (m.receipt === null) return 'job result without a receipt'
      const verdict = verifyReceipt(m.receipt, m.outputInline ? { output: m.output } : {})
      if (!verdict.valid) return `receipt invalid: ${verdict.reason}`
      if (verdict.receipt.workerId !== signer) return 'receipt signed by another node than the notice'
      return undefined
    }
  } satisfies Rule<JobResultNotice>
}

function safeNodeId (publicKey: Uint8Array): string {
  try {
    return nodeIdFromPublicKey(publicKey)
  } catch {
    return ''
  }
}

export function knownTopic (topic: string): boolean {
  return RULES[topic] !== undefined
}

/**
 * Every message from the mesh passes here before use: size, envelope shape, payload type for the
 * topic, ed25519 signature, signer = gossipsub author = the node the payload names, payload schema,
 * freshness, and topic-specific content checks. Never throws.
 */
export function validateGossip<T> (topic: string, data: Uint8Array, from: string, opts: ValidateOptions): Verdict<T> {
  const rule = RULES[topic] as Rule<T> | undefined
  if (rule === undefined) return { ok: false, code: 'WRONG_PAYLOAD_TYPE', reason: `no rule for topic ${topic}` }
  if (data.byteLength > opts.maxBytes) return { ok: false, code: 'OVERSIZED', reason: `${data.byteLength} bytes > ${opts.maxBytes}` }
  let envelope: SignedEnvelope
  try {
    envelope = decodeEnvelope(data)
  } catch (err) {
    return { ok: false, code: 'MALFORMED_ENVELOPE', reason: (err as Error).message }
  }
  if (envelope.payloadType !== rule.payloadType) {
    return { ok: false, code: 'WRONG_PAYLOAD_TYPE', reason: `expected ${rule.payloadType} on ${topic}, got ${envelope.payloadType.slice(0, 64)}` }
  }
  try {
    verifyEnvelope(envelope, { payloadType: rule.payloadType })
  } catch (err) {
    return { ok: false, code: 'BAD_SIGNATURE', reason: (err as Error).message }
  }
  const signer = safeNodeId(envelope.publicKey)
  if (signer === '' || signer !== from) {
    return { ok: false, code: 'SIGNER_MISMATCH', reason: `signed by ${signer || 'an invalid key'} but published by ${from}` }
  }
  let value: T
  try {
    value = rule.decode(envelope.payload)
  } catch (err) {
    return { ok: false, code: 'MALFORMED_PAYLOAD', reason: (err as Error).message }
  }
  if (rule.author(value) !== signer) {
    return { ok: false, code: 'SIGNER_MISMATCH', reason: `payload names ${rule.author(value).slice(0, 64)} but was signed by ${signer}` }
  }
  const skew = Math.abs(opts.now - rule.at(value))
  if (!(skew <= opts.maxSkewMs)) {
    return { ok: false, code: 'STALE', reason: `stamped ${Math.round(skew / 1000)} s from our clock (limit ${opts.maxSkewMs / 1000} s)` }
  }
  const problem = rule.check?.(value, signer)
  if (problem !== undefined) return { ok: false, code: 'INVALID_CONTENT', reason: problem }
  return { ok: true, value, envelope, signer }
}
