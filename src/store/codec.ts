import { RECORD_VERSION } from './constants.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { JobState, StateChange } from '../types.ts'
import type { JobRecord } from './types.ts'

/*
 * Records are stored as JSON with bytes in base64: readable with any LevelDB tool, and every
 * field is checked on the way back in, so a damaged record is reported instead of being
 * handed to the rest of the node half-formed.
 */

const STATES: ReadonlySet<string> = new Set<JobState>(['pending', 'running', 'success', 'failed'])

export function encodeRecord (job: JobRecord): string {
  const out: Record<string, unknown> = {
    v: RECORD_VERSION,
    id: job.id,
    containerId: job.containerId,
    input: toBase64(job.input),
    state: job.state,
    createdAtMs: job.createdAtMs,
    deadlineAtMs: job.deadlineAtMs,
    history: job.history.map((h) => ({ state: h.state, atMs: h.atMs, detail: h.detail })),
    schedulerId: job.schedulerId
  }
  if (job.startedAtMs !== undefined) out.startedAtMs = job.startedAtMs
  if (job.finishedAtMs !== undefined) out.finishedAtMs = job.finishedAtMs
  if (job.output !== undefined) out.output = toBase64(job.output)
  if (job.error !== undefined) out.error = job.error
  if (job.errorCode !== undefined) out.errorCode = job.errorCode
  if (job.exitCode !== undefined) out.exitCode = job.exitCode
  if (job.latencyMs !== undefined) out.latencyMs = job.latencyMs
  if (job.imageDigest !== undefined) out.imageDigest = job.imageDigest
  if (job.receipt !== undefined) {
    out.receipt = {
      payloadType: job.receipt.payloadType,
      payload: toBase64(job.receipt.payload),
      publicKey: toBase64(job.receipt.publicKey),
      signature: toBase64(job.receipt.signature)
    }
  }
  return JSON.stringify(out)
}

export class RecordDecodeError extends Error {
  readonly code = 'RECORD_CORRUPT'
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'RecordDecodeError'
  }
}

/** Throws RecordDecodeError saying which field is wrong. */
export function decodeRecord (text: string): JobRecord {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new RecordDecodeError('record is not JSON', { cause: err })
  }
  if (!isObject(raw)) throw new RecordDecodeError('record is not an object')
  if (raw.v !== RECORD_VERSION) throw new RecordDecodeError(`unknown record version ${String(raw.v)}`)
  const state = raw.state
  if (typeof state !== 'string' || !STATES.has(state)) throw new RecordDecodeError('bad state')
  if (!Array.isArray(raw.history)) throw new RecordDecodeError('history is not an array')
  const job: JobRecord = {
    id: str(raw, 'id'),
    containerId: str(raw, 'containerId'),
    input: bytes(raw, 'input'),
    state: state as JobState,
    createdAtMs: num(raw, 'createdAtMs'),
    deadlineAtMs: num(raw, 'deadlineAtMs'),
    history: raw.history.map(decodeChange),
    schedulerId: str(raw, 'schedulerId')
  }
  if (raw.startedAtMs !== undefined) job.startedAtMs = num(raw, 'startedAtMs')
  if (raw.finishedAtMs !== undefined) job.finishedAtMs = num(raw, 'finishedAtMs')
  if (raw.output !== undefined) job.output = bytes(raw, 'output')
  if (raw.error !== undefined) job.error = str(raw, 'error')
  if (raw.errorCode !== undefined) job.errorCode = str(raw, 'errorCode')
  if (raw.exitCode !== undefined) job.exitCode = num(raw, 'exitCode')
  if (raw.latencyMs !== undefined) job.latencyMs = num(raw, 'latencyMs')
  if (raw.imageDigest !== undefined) job.imageDigest = str(raw, 'imageDigest')
  if (raw.receipt !== undefined) job.receipt = decodeEnvelope(raw.receipt)
  return job
}

function decodeChange (value: unknown): StateChange {
  if (!isObject(value) || typeof value.state !== 'string' || !STATES.has(value.state)) {
    throw new RecordDecodeError('bad history entry')
  }
  return { state: value.state as JobState, atMs: num(value, 'atMs'), detail: str(value, 'detail') }
}

function decodeEnvelope (value: unknown): SignedEnvelope {
  if (!isObject(value)) throw new RecordDecodeError('receipt is not an object')
  return {
    payloadType: str(value, 'payloadType'),
    payload: bytes(value, 'payload'),
    publicKey: bytes(value, 'publicKey'),
    signature: bytes(value, 'signature')
  }
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function str (obj: Record<string, unknown>, key: string): string {
  const value = obj[key]
  if (typeof value !== 'string') throw new RecordDecodeError(`${key} is not a string`)
  return value
}

function num (obj: Record<string, unknown>, key: string): number {
  const value = obj[key]
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new RecordDecodeError(`${key} is not a number`)
  return value
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

function bytes (obj: Record<string, unknown>, key: string): Uint8Array {
  const value = obj[key]
  // Buffer.from(…, 'base64') silently drops bad characters; check first so damage is noticed.
  if (typeof value !== 'string' || value.length % 4 !== 0 || !BASE64.test(value)) {
    throw new RecordDecodeError(`${key} is not base64`)
  }
  // A plain Uint8Array copy: callers compare and hash bytes, and Buffer's pooled memory would leak neighbours.
  return new Uint8Array(Buffer.from(value, 'base64'))
}

function toBase64 (data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64')
}
