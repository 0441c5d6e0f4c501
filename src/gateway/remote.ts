import { containerConfig } from '../config/index.ts'
import { sha256 } from '../receipt/index.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { Receipt } from '../receipt/types.ts'
import type { JobRecord, StepRecord } from '../store/types.ts'
import { FAILURE_CODES } from './constants.ts'
import { DEADLINE_REASON, STOP_REASON } from './outcome.ts'
import { toRunning } from './transitions.ts'
import { InvalidJobIdError } from './errors.ts'
import { JOB_ID_PATTERN } from './constants.ts'
import type { Ending } from './transitions.ts'
import type { SubmitRequest } from './types.ts'
import { chainOf, type ValidSubmit } from './validate.ts'

/** Runs jobs on other nodes (a scheduler on the mesh); the orchestrator uses it for chains it cannot run itself. */
export interface RemoteExecutor {
  /** Containers some live worker serves now. */
  servedContainers(): Set<string>
  runRemote(job: { jobId: string, containers: string[], input: Uint8Array, deadlineAtMs: number, requiresProof: boolean },
    opts: { signal: AbortSignal, onProgress?: (p: { state: string, detail: string }) => void }): Promise<{ output: Uint8Array, receipt: SignedEnvelope, decoded: Receipt, workerId: string }>
}

export class NotServedError extends Error {
  readonly code = 'NOT_FOUND'
  constructor (missing: string[], served: Set<string>) {
    super(`no live worker on the mesh serves ${missing.map((m) => `"${m}"`).join(', ')}; served now: ${[...served].sort().join(', ') || 'none'} (see \`infra peers\`)`)
    this.name = 'NotServedError'
  }
}

/**
 * A submission for the mesh: this node holds no configs for its containers, so it checks what it can
 * (id, chain shape, that some worker serves each container, deadline); the worker that takes the job
 * runs the Guardian, limits and schema checks on its own configs.
 */
export function validateRemote (req: SubmitRequest, served: Set<string>, checkDeadline: (ms: number | undefined) => number): ValidSubmit {
  const jobId = req.jobId === undefined || req.jobId === '' ? undefined : req.jobId
  if (jobId !== undefined && !JOB_ID_PATTERN.test(jobId)) throw new InvalidJobIdError(jobId)
  const ids = chainOf(req)
  const missing = ids.filter((id) => !served.has(id))
  if (ids.length === 0 || missing.length > 0) throw new NotServedError(ids.length === 0 ? ['(none named)'] : missing, served)
  return {
    containers: ids.map((id) => containerConfig({ id, image: '', digest: '' })),
    jobId,
    deadlineMs: checkDeadline(req.deadlineMs),
    origin: { ip: req.origin?.ip ?? '', peerId: req.origin?.peerId ?? '', delegate: req.origin?.delegate ?? '' },
    requiresProof: req.requiresProof === true
  }
}

/** The job's steps as the worker's receipt reports them (outputs of intermediate steps stay on the worker). */
export function stepsFromReceipt (r: Receipt): StepRecord[] {
  return r.steps.map((s) => ({
    containerId: s.containerId,
    imageDigest: s.imageDigest,
    outputHash: s.outputHash,
    outputBytes: 0,
    exitCode: s.exitCode,
    latencyMs: 0,
    startedAtMs: r.startedAtMs,
    finishedAtMs: r.finishedAtMs,
    status: s.imageDigest === '' ? 'failed' : 'success',
    error: '',
    errorCode: ''
  }))
}

/** How a remote job ends, from the worker's verified receipt. */
export function endingFromReceipt (r: Receipt, output: Uint8Array, workerId: string): Ending {
  if (r.status === 'success') {
    return { state: 'success', detail: `succeeded on ${workerId}`, output, exitCode: r.exitCode }
  }
  return { state: 'failed', detail: `failed on ${workerId}`, exitCode: r.exitCode, error: r.error, errorCode: 'REMOTE_FAILED' }
}

/** Whether the bytes the worker sent are the ones its receipt signed. */
export function outputMatches (r: Receipt, output: Uint8Array): boolean {
  return Buffer.from(sha256(output)).equals(Buffer.from(r.outputHash))
}

export interface RemoteRunHooks {
  /** Persists and announces a new state of the job. */
  update: (job: JobRecord) => Promise<void>
  finish: (job: JobRecord, end: Ending, workerReceipt?: SignedEnvelope) => Promise<void>
  requeue: (job: JobRecord) => Promise<void>
}

/** Schedules a job on the mesh and finishes it with the worker's own signed receipt. */
export async function runRemoteJob (queued: JobRecord, controller: AbortController, remote: RemoteExecutor, hooks: RemoteRunHooks): Promise<void> {
  let job = toRunning(queued, Date.now(), 'scheduling on the mesh')
  const update = async (next: JobRecord): Promise<void> => {
    job = next
    await hooks.update(job)
  }
  await update(job)
  const deadline = setTimeout(() => { controller.abort(DEADLINE_REASON) }, Math.max(0, job.deadlineAtMs - Date.now()))
  try {
    const r = await remote.runRemote(
      { jobId: job.id, containers: job.containers, input: job.input, deadlineAtMs: job.deadlineAtMs, requiresProof: job.requiresProof },
      { signal: controller.signal, onProgress: (p) => { update(toRunning(job, Date.now(), p.detail)).catch(() => {}) } }
    )
    if (!outputMatches(r.decoded, r.output)) {
      throw Object.assign(new Error(`worker ${r.workerId} sent an output that does not match its receipt`), { code: 'REMOTE_OUTPUT_MISMATCH' })
    }
    await hooks.finish({ ...job, steps: stepsFromReceipt(r.decoded) }, endingFromReceipt(r.decoded, r.output, r.workerId), r.receipt)
  } catch (err) {
    if (controller.signal.reason === STOP_REASON) return await hooks.requeue(job)
    const code = controller.signal.reason === DEADLINE_REASON ? FAILURE_CODES.deadlineExceeded : String((err as { code?: unknown }).code ?? FAILURE_CODES.internal)
    await hooks.finish(job, { state: 'failed', detail: `failed: ${code}`, error: (err as Error).message, errorCode: code })
  } finally {
    clearTimeout(deadline)
  }
}
