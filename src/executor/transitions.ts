import type { JobRecord, StepRecord } from '../store/types.ts'

/*
 * Every state change makes a new record instead of mutating the old one, so a record already
 * handed to a caller (submit's result, an event listener) never changes underneath it.
 */

/** How a job ends; the jobs service turns it into the final record, receipt and event. */
export interface Ending {
  state: 'success' | 'failed'
  detail: string
  output?: Uint8Array
  exitCode?: number
  imageDigest?: string
  error?: string
  errorCode?: string
}

/** The first step of a run starts the clock; later steps add a `running` entry each, so watchers see progress. */
export function toRunning (job: JobRecord, atMs: number, detail: string): JobRecord {
  return {
    ...job,
    state: 'running',
    startedAtMs: job.state === 'running' ? job.startedAtMs ?? atMs : atMs,
    history: [...job.history, { state: 'running', atMs, detail }]
  }
}

export function withStep (job: JobRecord, step: StepRecord): JobRecord {
  return { ...job, steps: [...job.steps, step] }
}

/** Back to pending after an interrupted run; startedAtMs goes so the next run sets its own. */
export function toRequeued (job: JobRecord, atMs: number, detail: string): JobRecord {
  const { startedAtMs: _dropped, ...rest } = job
  return { ...rest, state: 'pending', history: [...job.history, { state: 'pending', atMs, detail }] }
}

/** latencyMs counts from the start of the run, or from acceptance for a job that never ran. */
export function toFinished (job: JobRecord, end: Ending, atMs: number): JobRecord {
  const done: JobRecord = {
    ...job,
    state: end.state,
    finishedAtMs: atMs,
    latencyMs: Math.max(0, atMs - (job.startedAtMs ?? job.createdAtMs)),
    history: [...job.history, { state: end.state, atMs, detail: end.detail }]
  }
  if (end.output !== undefined) done.output = end.output
  if (end.exitCode !== undefined) done.exitCode = end.exitCode
  if (end.imageDigest !== undefined) done.imageDigest = end.imageDigest
  if (end.error !== undefined) done.error = end.error
  if (end.errorCode !== undefined) done.errorCode = end.errorCode
  return done
}
