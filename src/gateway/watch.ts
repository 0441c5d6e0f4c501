import { JobNotFoundError, WaitAbortedError } from './errors.ts'
import type { JobRecord } from '../store/types.ts'
import type { JobChange, JobEvent } from './types.ts'

/** What waiting and watching need of the jobs service. */
export interface JobSource {
  on(listener: (event: JobEvent) => void): () => void
  get(id: string): Promise<JobRecord | undefined>
}

function terminal (job: JobRecord): boolean {
  return job.state === 'success' || job.state === 'failed'
}

function aborted (id: string, signal: AbortSignal): Error {
  return new WaitAbortedError(id, { cause: signal.reason })
}

/**
 * Resolves with the finished job. The subscription comes before the read, so a job that ends between
 * the two is never missed; a terminal event carries the stored record, so no second read is needed.
 */
export async function waitJob (id: string, source: JobSource, signal?: AbortSignal): Promise<JobRecord> {
  return await watchJob(id, () => {}, source, signal)
}

/**
 * Calls onChange for each state change of the job (its recorded history first, then live changes,
 * each state+detail once) and resolves with the finished job.
 */
export async function watchJob (id: string, onChange: (change: JobChange) => void, source: JobSource, signal?: AbortSignal): Promise<JobRecord> {
  if (signal?.aborted === true) throw aborted(id, signal)
  let settle: { resolve: (job: JobRecord) => void, reject: (err: Error) => void } | undefined
  const ended = new Promise<JobRecord>((resolve, reject) => { settle = { resolve, reject } })
  // Changes that arrive before the history is replayed wait here, so the order stays history-first.
  let buffered: JobChange[] | undefined = []
  let lastKey = ''
  const deliver = (change: JobChange): void => {
    const key = `${change.state} ${change.detail}`
    if (key === lastKey) return
    lastKey = key
    onChange(change)
  }
  const off = source.on((event) => {
    if (event.jobId !== id) return
    if (event.job !== undefined) {
      settle?.resolve(event.job)
      return
    }
    const change = { state: event.state, atMs: event.atMs, detail: event.detail }
    if (buffered !== undefined) buffered.push(change)
    else deliver(change)
  })
  const onAbort = (): void => settle?.reject(aborted(id, signal as AbortSignal))
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    const job = await source.get(id)
    if (job === undefined) throw new JobNotFoundError(id)
    if (terminal(job)) return job
    const seen = new Set(job.history.map((h) => `${h.state} ${h.detail} ${h.atMs}`))
    for (const h of job.history) deliver({ state: h.state, atMs: h.atMs, detail: h.detail })
    for (const change of buffered ?? []) if (!seen.has(`${change.state} ${change.detail} ${change.atMs}`)) deliver(change)
    buffered = undefined
    return await ended
  } finally {
    off()
    signal?.removeEventListener('abort', onAbort)
  }
}
