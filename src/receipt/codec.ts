import type { Receipt, ReceiptStep } from './types.ts'
import { MalformedReceiptError } from './errors.ts'
import { decodeStrict, encode, MalformedMessageError } from '../protocol/index.ts'

const HASH_BYTES = 32
const STATUSES: ReadonlySet<string> = new Set(['success', 'failed'])

/** Protobuf inframind.v1.Receipt bytes; throws MalformedReceiptError for a receipt that could not be decoded back. */
export function encodeReceipt (r: Receipt): Uint8Array {
  checkReceipt(r)
  return encode('inframind.v1.Receipt', r)
}

/**
 * Parses receipt bytes (untrusted): the strict wire check, then the receipt's own rules (hash lengths,
 * status, integer ranges). Anything wrong is a MalformedReceiptError naming the field.
 */
export function decodeReceipt (bytes: Uint8Array): Receipt {
  if (!(bytes instanceof Uint8Array)) throw new MalformedReceiptError('', 'expected bytes')
  let r: unknown
  try {
    r = decodeStrict('inframind.v1.Receipt', bytes)
  } catch (err) {
    if (!(err instanceof MalformedMessageError)) throw err
    throw new MalformedReceiptError(err.field, `not a protobuf Receipt (${err.reason})`, { cause: err })
  }
  checkReceipt(r)
  return r
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
