import type { ContainerConfig } from '../config/types.ts'
import type { JobRecord, StepRecord } from '../store/types.ts'
import type { JobState } from '../types.ts'
import type { ImageProgress } from '../runtime/types.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import type { ContainerInfo, Job, JobState as WireJobState, JobStep, JobSummary, SignedEnvelope } from '../protocol/generated.ts'

const TO_WIRE: Record<JobState, WireJobState> = {
  pending: 'JOB_STATE_PENDING',
  running: 'JOB_STATE_RUNNING',
  success: 'JOB_STATE_SUCCESS',
  failed: 'JOB_STATE_FAILED'
}

export function stateToWire (state: JobState): WireJobState {
  return TO_WIRE[state]
}

export function stateFromWire (state: string): JobState | undefined {
  for (const [k, v] of Object.entries(TO_WIRE)) if (v === state) return k as JobState
  return undefined
}

/** Buffers, as proto-loader itself hands bytes out, so wire objects look alike in both directions. */
export function envelopeToWire (env: SignedEnvelope): SignedEnvelope {
  return {
    payloadType: env.payloadType,
    payload: Buffer.from(env.payload),
    publicKey: Buffer.from(env.publicKey),
    signature: Buffer.from(env.signature)
  }
}

/** Copies out of gRPC's receive buffers, so signed bytes cannot change under a verifier. */
export function envelopeFromWire (env: SignedEnvelope): SignedEnvelope {
  return {
    payloadType: env.payloadType,
    payload: new Uint8Array(env.payload),
    publicKey: new Uint8Array(env.publicKey),
    signature: new Uint8Array(env.signature)
  }
}

const NO_BYTES = Buffer.alloc(0)

/**
 * The wire form of a job. Steps always carry container, digest, hash, size and status; their output
 * bytes only with includeSteps (a chain's intermediates can be large and most callers want the result).
 * A job this node ran for a scheduler shows no output bytes at all: its result went back to the
 * scheduler sealed, and its id has been seen by others (it may ride gossip), so the id must not be
 * a key to the client's data here. State, hashes and the receipt stay readable.
 */
export function jobToWire (job: JobRecord, opts: { includeSteps?: boolean } = {}): Job {
  if (job.schedulerId !== '') {
    const { output: _output, ...rest } = job
    return jobToWireUnchecked({ ...rest, steps: job.steps.map(({ output: _o, ...s }) => s) }, { includeSteps: false })
  }
  return jobToWireUnchecked(job, opts)
}

function jobToWireUnchecked (job: JobRecord, opts: { includeSteps?: boolean }): Job {
  return {
    jobId: job.id,
    containerId: job.containerId,
    state: stateToWire(job.state),
    output: Buffer.from(job.output ?? new Uint8Array()),
    error: job.error ?? '',
    exitCode: job.exitCode ?? 0,
    receipt: job.receipt !== undefined ? envelopeToWire(job.receipt) : null,
    history: job.history.map((h) => ({ state: stateToWire(h.state), atMs: h.atMs, detail: h.detail })),
    createdAtMs: job.createdAtMs,
    startedAtMs: job.startedAtMs ?? 0,
    finishedAtMs: job.finishedAtMs ?? 0,
    latencyMs: job.latencyMs ?? 0,
    inputBytes: job.input.byteLength,
    deadlineAtMs: job.deadlineAtMs,
    errorCode: job.errorCode ?? '',
    containers: job.containers,
    steps: job.steps.map((step, i) => stepToWire(job, step, i, opts.includeSteps === true)),
    workerId: job.workerId ?? (job.receipt !== undefined ? nodeIdFromPublicKey(job.receipt.publicKey) : ''),
    workerOnProbation: job.workerOnProbation === true,
    verification: job.verification !== undefined
      ? { method: job.verification.method, validators: job.verification.validators, quorum: job.verification.quorum }
      : { method: 'none', validators: 0, quorum: 0 },
    verificationState: job.verification?.state ?? '',
    verificationReason: job.verification?.reason ?? '',
    certificate: job.verification?.certificate !== undefined ? envelopeToWire(job.verification.certificate) : null
  }
}

function stepToWire (job: JobRecord, step: StepRecord, i: number, withOutput: boolean): JobStep {
  // The last successful step's output is the job's output, stored once.
  const output = step.output ?? (step.status === 'success' && i === job.steps.length - 1 ? job.output : undefined)
  return {
    containerId: step.containerId,
    imageDigest: step.imageDigest,
    output: withOutput && output !== undefined ? Buffer.from(output) : NO_BYTES,
    outputHash: Buffer.from(step.outputHash),
    exitCode: step.exitCode,
    latencyMs: step.latencyMs,
    status: step.status,
    error: step.error,
    outputBytes: step.outputBytes
  }
}

export function jobSummaryToWire (job: JobRecord): JobSummary {
  return {
    jobId: job.id,
    containerId: job.containerId,
    state: stateToWire(job.state),
    createdAtMs: job.createdAtMs,
    finishedAtMs: job.finishedAtMs ?? 0,
    latencyMs: job.latencyMs ?? 0,
    error: job.error ?? ''
  }
}

export interface ContainerLiveState { state: string, restarts: number, lastError: string, pull?: ImageProgress }

export function containerToWire (c: ContainerConfig, imagePresent: boolean, live?: ContainerLiveState): ContainerInfo {
  return {
    id: c.id,
    image: c.image,
    digest: c.digest,
    inputSchema: c.inputSchema,
    outputSchema: c.outputSchema,
    resources: { cpus: c.resources.cpus, memoryBytes: c.resources.memoryBytes, pids: c.resources.pids, gpu: c.resources.gpu },
    timeoutMs: c.timeoutMs,
    maxOutputBytes: c.maxOutputBytes,
    network: c.network,
    imagePresent,
    description: c.description,
    mode: c.mode,
    state: live?.state ?? (imagePresent ? 'ready' : 'missing'),
    restarts: live?.restarts ?? 0,
    external: c.external,
    lastError: live?.lastError ?? '',
    generatesProofs: c.generatesProofs,
    pullDoneBytes: live?.pull?.doneBytes ?? 0,
    pullTotalBytes: live?.pull?.totalBytes ?? 0
  }
}
