import { createHash } from 'node:crypto'
import { READABLE_RECORD_VERSIONS, RECORD_VERSION } from './constants.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { JobState, StateChange } from '../types.ts'
import type { JobOrigin } from '../runtime/types.ts'
import type { JobRecord, JobVerification, StepRecord, VerificationState } from './types.ts'

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
    containers: job.containers,
    steps: job.steps.map(encodeStep),
    input: toBase64(job.input),
    origin: { ip: job.origin.ip, peerId: job.origin.peerId, delegate: job.origin.delegate },
    requiresProof: job.requiresProof,
    state: job.state,
    createdAtMs: job.createdAtMs,
    deadlineAtMs: job.deadlineAtMs,
    history: job.history.map((h) => ({ state: h.state, atMs: h.atMs, detail: h.detail })),
    schedulerId: job.schedulerId,
    allowProbation: job.allowProbation
  }
  if (job.startedAtMs !== undefined) out.startedAtMs = job.startedAtMs
  if (job.finishedAtMs !== undefined) out.finishedAtMs = job.finishedAtMs
  if (job.output !== undefined) out.output = toBase64(job.output)
  if (job.error !== undefined) out.error = job.error
  if (job.errorCode !== undefined) out.errorCode = job.errorCode
  if (job.exitCode !== undefined) out.exitCode = job.exitCode
  if (job.latencyMs !== undefined) out.latencyMs = job.latencyMs
  if (job.imageDigest !== undefined) out.imageDigest = job.imageDigest
  if (job.workerId !== undefined) out.workerId = job.workerId
  if (job.placement !== undefined) out.placement = { key: job.placement.key, slot: job.placement.slot }
  if (job.excludeWorkers !== undefined) out.excludeWorkers = job.excludeWorkers
  if (job.workerOnProbation !== undefined) out.workerOnProbation = job.workerOnProbation
  if (job.receipt !== undefined) out.receipt = encodeEnvelope(job.receipt)
  if (job.verification !== undefined) {
    const v = job.verification
    out.verification = { method: v.method, validators: v.validators, quorum: v.quorum, state: v.state, reason: v.reason, ...(v.certificate !== undefined ? { certificate: encodeEnvelope(v.certificate) } : {}) }
  }
  return JSON.stringify(out)
}

function encodeEnvelope (env: SignedEnvelope): Record<string, unknown> {
  return { payloadType: env.payloadType, payload: toBase64(env.payload), publicKey: toBase64(env.publicKey), signature: toBase64(env.signature) }
}

function encodeStep (step: StepRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {
    containerId: step.containerId,
    imageDigest: step.imageDigest,
    outputHash: toBase64(step.outputHash),
    outputBytes: step.outputBytes,
    exitCode: step.exitCode,
    latencyMs: step.latencyMs,
    startedAtMs: step.startedAtMs,
    finishedAtMs: step.finishedAtMs,
    status: step.status,
    error: step.error,
    errorCode: step.errorCode
  }
  if (step.output !== undefined) out.output = toBase64(step.output)
  return out
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
  if (!READABLE_RECORD_VERSIONS.has(raw.v)) throw new RecordDecodeError(`unknown record version ${String(raw.v)}`)
  const state = raw.state
  if (typeof state !== 'string' || !STATES.has(state)) throw new RecordDecodeError('bad state')
  if (!Array.isArray(raw.history)) throw new RecordDecodeError('history is not an array')
  const containerId = str(raw, 'containerId')
  // Version 1 records predate chains: one container, no steps, origin unknown.
  const containers = raw.containers === undefined ? [containerId] : strList(raw, 'containers')
  if (containers.length === 0) throw new RecordDecodeError('containers is empty')
  const rawSteps = raw.steps
  if (rawSteps !== undefined && !Array.isArray(rawSteps)) throw new RecordDecodeError('steps is not an array')
  const job: JobRecord = {
    id: str(raw, 'id'),
    containerId,
    containers,
    steps: Array.isArray(rawSteps) ? rawSteps.map(decodeStep) : [],
    input: bytes(raw, 'input'),
    origin: raw.origin === undefined ? { ip: '', peerId: '', delegate: '' } : decodeOrigin(raw.origin),
    requiresProof: raw.requiresProof === undefined ? false : bool(raw, 'requiresProof'),
    state: state as JobState,
    createdAtMs: num(raw, 'createdAtMs'),
    deadlineAtMs: num(raw, 'deadlineAtMs'),
    history: raw.history.map(decodeChange),
    schedulerId: str(raw, 'schedulerId'),
    allowProbation: raw.allowProbation === undefined ? false : bool(raw, 'allowProbation')
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
  if (raw.workerId !== undefined) job.workerId = str(raw, 'workerId')
  if (raw.placement !== undefined) {
    const p = raw.placement as Record<string, unknown>
    job.placement = { key: str(p, 'key'), slot: num(p, 'slot') }
  }
  if (Array.isArray(raw.excludeWorkers)) job.excludeWorkers = (raw.excludeWorkers as unknown[]).filter((w): w is string => typeof w === 'string')
  if (raw.workerOnProbation !== undefined) job.workerOnProbation = bool(raw, 'workerOnProbation')
  if (raw.verification !== undefined) job.verification = decodeVerification(raw.verification)
  if (raw.v === 1) job.steps = legacySteps(job)
  return job
}

const VERIFICATION_STATES: ReadonlySet<string> = new Set<VerificationState>(['pending', 'certified', 'incomplete', 'disputed'])

function decodeVerification (raw: unknown): JobVerification {
  if (!isObject(raw)) throw new RecordDecodeError('verification is not an object')
  const method = str(raw, 'method')
  if (method !== 'signature' && method !== 'reexecute') throw new RecordDecodeError('bad verification method')
  const state = str(raw, 'state')
  if (!VERIFICATION_STATES.has(state)) throw new RecordDecodeError('bad verification state')
  const v: JobVerification = { method, validators: num(raw, 'validators'), quorum: num(raw, 'quorum'), state: state as VerificationState, reason: str(raw, 'reason') }
  if (raw.certificate !== undefined) v.certificate = decodeEnvelope(raw.certificate)
  return v
}

/** A version 1 job that ran had exactly one step, described by the job's own fields. */
function legacySteps (job: JobRecord): StepRecord[] {
  if ((job.state !== 'success' && job.state !== 'failed') || job.startedAtMs === undefined) return []
  const output = job.state === 'success' ? job.output ?? new Uint8Array(0) : new Uint8Array(0)
  const finishedAtMs = job.finishedAtMs ?? job.startedAtMs
  return [{
    containerId: job.containerId,
    imageDigest: job.imageDigest ?? '',
    outputHash: new Uint8Array(createHash('sha256').update(output).digest()),
    outputBytes: output.byteLength,
    exitCode: job.exitCode ?? -1,
    latencyMs: job.latencyMs ?? finishedAtMs - job.startedAtMs,
    startedAtMs: job.startedAtMs,
    finishedAtMs,
    status: job.state,
    error: job.error ?? '',
    errorCode: job.errorCode ?? ''
  }]
}

function decodeStep (value: unknown): StepRecord {
  if (!isObject(value)) throw new RecordDecodeError('step is not an object')
  const status = value.status
  if (status !== 'success' && status !== 'failed') throw new RecordDecodeError('bad step status')
  const step: StepRecord = {
    containerId: str(value, 'containerId'),
    imageDigest: str(value, 'imageDigest'),
    outputHash: bytes(value, 'outputHash'),
    outputBytes: num(value, 'outputBytes'),
    exitCode: num(value, 'exitCode'),
    latencyMs: num(value, 'latencyMs'),
    startedAtMs: num(value, 'startedAtMs'),
    finishedAtMs: num(value, 'finishedAtMs'),
    status,
    error: str(value, 'error'),
    errorCode: str(value, 'errorCode')
  }
  if (value.output !== undefined) step.output = bytes(value, 'output')
  return step
}

function decodeOrigin (value: unknown): JobOrigin {
  if (!isObject(value)) throw new RecordDecodeError('origin is not an object')
  return { ip: str(value, 'ip'), peerId: str(value, 'peerId'), delegate: str(value, 'delegate') }
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

function bool (obj: Record<string, unknown>, key: string): boolean {
  const value = obj[key]
  if (typeof value !== 'boolean') throw new RecordDecodeError(`${key} is not a boolean`)
  return value
}

function strList (obj: Record<string, unknown>, key: string): string[] {
  const value = obj[key]
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new RecordDecodeError(`${key} is not a list of strings`)
  return value as string[]
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
