import type { Receipt, ReceiptStep } from './types.ts'
import { MalformedReceiptError } from './errors.ts'
import { protoType } from '../envelope/proto.ts'

const HASH_BYTES = 32
const STATUSES: ReadonlySet<string> = new Set(['success', 'failed'])

/** Protobuf inframind.v1.Receipt bytes; throws MalformedReceiptError for a receipt that could not be decoded back. */
export function encodeReceipt (r: Receipt): Uint8Array {
  checkReceipt(r)
  const type = protoType('inframind.v1.Receipt')
  const bytes = type.encode(type.create({
    jobId: r.jobId,
    jobHash: r.jobHash,
    inputHash: r.inputHash,
    outputHash: r.outputHash,
    steps: r.steps.map((s) => ({
      containerId: s.containerId, imageDigest: s.imageDigest, outputHash: s.outputHash, exitCode: s.exitCode
    })),
    status: r.status,
    exitCode: r.exitCode,
    latencyMs: r.latencyMs,
    startedAtMs: r.startedAtMs,
    finishedAtMs: r.finishedAtMs,
    workerId: r.workerId,
    schedulerId: r.schedulerId,
    error: r.error
  })).finish()
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Parses receipt bytes (untrusted); anything wrong is a MalformedReceiptError. */
export function decodeReceipt (bytes: Uint8Array): Receipt {
  if (!(bytes instanceof Uint8Array)) throw new MalformedReceiptError('', 'expected bytes')
  let m: Record<string, unknown>
  try {
    m = protoType('inframind.v1.Receipt').decode(bytes) as unknown as Record<string, unknown>
  } catch (err) {
    throw new MalformedReceiptError('', `not a protobuf Receipt (${(err as Error).message})`, { cause: err })
  }
  const steps = Array.isArray(m.steps) ? m.steps as Array<Record<string, unknown>> : []
  const r = {
    jobId: m.jobId,
    jobHash: copy(m.jobHash),
    inputHash: copy(m.inputHash),
    outputHash: copy(m.outputHash),
    steps: steps.map((s) => ({
      containerId: s.containerId, imageDigest: s.imageDigest, outputHash: copy(s.outputHash), exitCode: s.exitCode
    })),
    status: m.status,
    exitCode: m.exitCode,
    latencyMs: u64(m.latencyMs, 'latency_ms'),
    startedAtMs: u64(m.startedAtMs, 'started_at_ms'),
    finishedAtMs: u64(m.finishedAtMs, 'finished_at_ms'),
    workerId: m.workerId,
    schedulerId: m.schedulerId,
    error: m.error
  }
  checkReceipt(r)
  return r
}

function copy (value: unknown): Uint8Array | undefined {
  return value instanceof Uint8Array ? new Uint8Array(value) : undefined
}

/** protobufjs yields uint64 as a Long when the `long` package is present; receipts carry them as JS numbers. */
function u64 (value: unknown, field: string): number {
  if (typeof value === 'number') return value
  if (typeof value === 'object' && value !== null && 'low' in value && 'high' in value) {
    const { low, high } = value as { low: number, high: number }
    const n = (high >>> 0) * 2 ** 32 + (low >>> 0)
    if (!Number.isSafeInteger(n)) throw new MalformedReceiptError(field, 'larger than 2^53')
    return n
  }
  throw new MalformedReceiptError(field, 'not an integer')
}

function checkReceipt (value: unknown): asserts value is Receipt {
  if (typeof value !== 'object' || value === null) throw new MalformedReceiptError('', 'not an object')
  const r = value as Record<string, unknown>
  str(r.jobId, 'job_id')
  if (r.jobId === '') throw new MalformedReceiptError('job_id', 'empty')
  hash(r.jobHash, 'job_hash', false)
  hash(r.inputHash, 'input_hash', false)
  // A job that failed before producing output may carry no output hash.
  hash(r.outputHash, 'output_hash', true)
  if (!Array.isArray(r.steps)) throw new MalformedReceiptError('steps', 'not a list')
  r.steps.forEach((s: unknown, i: number) => checkStep(s, i))
  if (typeof r.status !== 'string' || !STATUSES.has(r.status)) {
    throw new MalformedReceiptError('status', 'expected "success" or "failed"')
  }
  int32(r.exitCode, 'exit_code')
  for (const [key, field] of [['latencyMs', 'latency_ms'], ['startedAtMs', 'started_at_ms'], ['finishedAtMs', 'finished_at_ms']]) {
    if (!Number.isSafeInteger(r[key]) || (r[key] as number) < 0) throw new MalformedReceiptError(field, 'expected a non-negative integer')
  }
  str(r.workerId, 'worker_id')
  str(r.schedulerId, 'scheduler_id')
  str(r.error, 'error')
}

function checkStep (value: unknown, i: number): asserts value is ReceiptStep {
  if (typeof value !== 'object' || value === null) throw new MalformedReceiptError(`steps[${i}]`, 'not an object')
  const s = value as Record<string, unknown>
  str(s.containerId, `steps[${i}].container_id`)
  str(s.imageDigest, `steps[${i}].image_digest`)
  hash(s.outputHash, `steps[${i}].output_hash`, true)
  int32(s.exitCode, `steps[${i}].exit_code`)
}

function str (value: unknown, field: string): void {
  if (typeof value !== 'string') throw new MalformedReceiptError(field, 'expected a string')
}

function int32 (value: unknown, field: string): void {
  if (!Number.isInteger(value) || (value as number) < -(2 ** 31) || (value as number) >= 2 ** 31) {
    throw new MalformedReceiptError(field, 'expected a 32-bit integer')
  }
}

function hash (value: unknown, field: string, mayBeEmpty: boolean): void {
  if (!(value instanceof Uint8Array)) throw new MalformedReceiptError(field, 'expected bytes')
  if (value.length === HASH_BYTES || (mayBeEmpty && value.length === 0)) return
  throw new MalformedReceiptError(field, `expected a ${HASH_BYTES}-byte sha256, got ${value.length} bytes`)
}
