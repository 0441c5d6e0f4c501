import type { SignedEnvelope } from '../envelope/types.ts'
import type { JobRecord, StepRecord } from '../store/types.ts'
import type { JobState } from '../types.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import { decodeReceipt, sha256 } from '../receipt/index.ts'
import { decodeCertificate } from '../protocol/index.ts'
import { MAX_ERROR_CHARS } from './constants.ts'

/*
 * What the dashboard shows of a job: ids, states, timings, sizes and hashes. Never the input, the
 * output, a step's output or the client's origin (the page is for the operator, the data is the
 * client's), and never a container's stderr: a failed job's error loses its "; stderr: ..." tail.
 */

export interface JobView {
  id: string
  containers: string[]
  state: JobState
  createdAtMs: number
  startedAtMs: number
  finishedAtMs: number
  latencyMs: number
  /** 'local': this node's executor ran it; 'mesh': a worker on the mesh did. */
  lane: 'local' | 'mesh'
  /** The node that ran it ('' while unknown). */
  workerId: string
  /** Who assigned it here ('' for a direct submission). */
  schedulerId: string
  errorCode: string
  error: string
  /** Whether the job carries its worker's signed receipt. */
  receipt: boolean
  /** The verification policy and how far it got; null when the job is not verified. */
  verification: { method: string, validators: number, quorum: number, state: string, reason: string, certificate: boolean } | null
  inputBytes: number
}

export interface StepView {
  containerId: string
  imageDigest: string
  status: string
  exitCode: number
  latencyMs: number
  startedAtMs: number
  finishedAtMs: number
  outputBytes: number
  outputSha256: string
  errorCode: string
  error: string
}

export interface SignedView {
  payloadType: string
  /** Node id of the signing key. */
  signer: string
  /** sha256 of the signed payload bytes (hex). */
  payloadSha256: string
}

export interface JobDetailView extends JobView {
  deadlineAtMs: number
  requiresProof: boolean
  inputSha256: string
  steps: StepView[]
  history: Array<{ state: JobState, atMs: number, detail: string }>
  receiptDetail: (SignedView & { jobHash: string, inputHash: string, outputHash: string, status: string, latencyMs: number }) | null
  certificateDetail: (SignedView & { resolution: string, attestations: number, chosen: string[], outputHash: string, issuedAtMs: number }) | null
}

/** A job's line in the list. `self` is this node's id: the worker of the jobs it ran itself. */
export function jobView (job: JobRecord, self: string): JobView {
  const v = job.verification
  return {
    id: job.id,
    containers: [...job.containers],
    state: job.state,
    createdAtMs: job.createdAtMs,
    startedAtMs: job.startedAtMs ?? 0,
    finishedAtMs: job.finishedAtMs ?? 0,
    latencyMs: job.latencyMs ?? 0,
    lane: job.workerId !== undefined ? 'mesh' : 'local',
    workerId: job.workerId ?? (job.receipt !== undefined ? signerOf(job.receipt) : job.steps.length > 0 ? self : ''),
    schedulerId: job.schedulerId,
    errorCode: job.errorCode ?? '',
    error: shownError(job.error ?? ''),
    receipt: job.receipt !== undefined,
    verification: v !== undefined
      ? { method: v.method, validators: v.validators, quorum: v.quorum, state: v.state, reason: shownError(v.reason), certificate: v.certificate !== undefined }
      : null,
    inputBytes: job.input.byteLength
  }
}

/** A job with its steps, history and the facts of its receipt and certificate. */
export function jobDetailView (job: JobRecord, self: string): JobDetailView {
  return {
    ...jobView(job, self),
    deadlineAtMs: job.deadlineAtMs,
    requiresProof: job.requiresProof,
    inputSha256: hex(sha256(job.input)),
    steps: job.steps.map(stepView),
    history: job.history.map((h) => ({ state: h.state, atMs: h.atMs, detail: h.detail })),
    receiptDetail: job.receipt !== undefined ? receiptView(job.receipt) : null,
    certificateDetail: job.verification?.certificate !== undefined ? certificateView(job.verification.certificate) : null
  }
}

function stepView (step: StepRecord): StepView {
  return {
    containerId: step.containerId,
    imageDigest: step.imageDigest,
    status: step.status,
    exitCode: step.exitCode,
    latencyMs: step.latencyMs,
    startedAtMs: step.startedAtMs,
    finishedAtMs: step.finishedAtMs,
    outputBytes: step.outputBytes,
    outputSha256: hex(step.outputHash),
    errorCode: step.errorCode,
    error: shownError(step.error)
  }
}

function signedView (env: SignedEnvelope): SignedView {
  return { payloadType: env.payloadType, signer: signerOf(env), payloadSha256: hex(sha256(env.payload)) }
}

function receiptView (env: SignedEnvelope): JobDetailView['receiptDetail'] {
  try {
    const r = decodeReceipt(env.payload)
    return { ...signedView(env), jobHash: hex(r.jobHash), inputHash: hex(r.inputHash), outputHash: hex(r.outputHash), status: r.status, latencyMs: r.latencyMs }
  } catch {
    // Verified when it arrived; a record that no longer decodes is shown as what it is.
    return { ...signedView(env), jobHash: '', inputHash: '', outputHash: '', status: 'undecodable', latencyMs: 0 }
  }
}

function certificateView (env: SignedEnvelope): JobDetailView['certificateDetail'] {
  try {
    const c = decodeCertificate(env.payload)
    return { ...signedView(env), resolution: c.resolution, attestations: c.attestations.length, chosen: [...c.chosen], outputHash: hex(c.outputHash), issuedAtMs: c.issuedAtMs }
  } catch {
    return { ...signedView(env), resolution: 'undecodable', attestations: 0, chosen: [], outputHash: '', issuedAtMs: 0 }
  }
}

function signerOf (env: SignedEnvelope): string {
  try {
    return nodeIdFromPublicKey(env.publicKey)
  } catch {
    return ''
  }
}

/** An error as the page shows it: without the container's stderr (it may echo the client's data), bounded. */
export function shownError (error: string): string {
  const cut = error.indexOf('; stderr:')
  const text = cut >= 0 ? error.slice(0, cut) : error
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS - 1)}…` : text
}

function hex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}
