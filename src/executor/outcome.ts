import { FAILURE_CODES } from './constants.ts'

/** Enough stderr to explain a failure without turning job errors into logs. */
const STDERR_IN_ERROR_CHARS = 1024
import type { RunResult } from '../runtime/types.ts'

/** Why the jobs service aborted a run; compared by identity, so a runtime's own abort reasons never match. */
export const DEADLINE_REASON = Object.freeze({ reason: 'deadline' })
export const STOP_REASON = Object.freeze({ reason: 'stop' })

/** A run that did not settle within the grace period after its abort; its slot is freed anyway. */
export class RuntimeHungError extends Error {
  readonly code = 'RUNTIME_HUNG'
  constructor (graceMs: number) {
    super(`runtime did not stop within ${graceMs} ms of the abort`)
    this.name = 'RuntimeHungError'
  }
}

export type Outcome =
  | { ok: true, result: RunResult }
  | { ok: false, error: unknown, hung: boolean }

/**
 * Runs `start` and settles with its result or error. Once `signal` aborts, a run that has not
 * settled within graceMs is given up on, so a runtime that ignores aborts cannot hold a slot forever.
 */
export function settle (start: () => Promise<RunResult>, signal: AbortSignal, graceMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    let grace: NodeJS.Timeout | undefined
    const onAbort = (): void => {
      grace = setTimeout(() => {
        resolve({ ok: false, error: new RuntimeHungError(graceMs), hung: true })
      }, graceMs)
    }
    const done = (): void => {
      clearTimeout(grace)
      signal.removeEventListener('abort', onAbort)
    }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
    let run: Promise<RunResult>
    try {
      run = start()
    } catch (err) {
      run = Promise.reject(err)
    }
    Promise.resolve(run).then(
      (result) => { done(); resolve({ ok: true, result }) },
      (error: unknown) => { done(); resolve({ ok: false, error, hung: false }) }
    )
  })
}

/** Reads a property of anything thrown (an Error, a string, null, a hostile getter) without throwing. */
export function prop (value: unknown, key: string): unknown {
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return undefined
  try {
    return (value as Record<string, unknown>)[key]
  } catch {
    return undefined
  }
}

/** A one-line reason for anything thrown; never throws itself (a thrown Proxy may trap anything). */
export function describe (err: unknown): string {
  try {
    if (typeof err === 'string') return err
    const message = prop(err, 'message')
    if (typeof message === 'string' && message !== '') return message
    const name = prop(err, 'name')
    if (err instanceof Error) return typeof name === 'string' && name !== '' ? name : 'error without a message'
    return `runtime threw a non-Error value: ${JSON.stringify(err) ?? String(err)}`
  } catch {
    return 'runtime threw a non-Error value'
  }
}

export interface Failure {
  error: string
  errorCode: string
  exitCode?: number
  imageDigest?: string
}

/** Maps a failed run to the job's error fields, reading only the properties runtime errors are documented to carry. */
export function failureOf (error: unknown, deadlineHit: boolean, hung: boolean, budgetMs: number): Failure {
  const code = prop(error, 'code')
  const runtimeCode = typeof code === 'string' && code !== '' ? code : undefined
  const failure: Failure = { error: describe(error), errorCode: runtimeCode ?? FAILURE_CODES.internal }
  // Our own deadline abort surfaces from the runtime as ABORTED (or as nothing, when it hung): name the real cause.
  if (deadlineHit && (hung || runtimeCode === undefined || runtimeCode === 'ABORTED')) {
    failure.errorCode = FAILURE_CODES.deadlineExceeded
    failure.error = `deadline of ${budgetMs} ms exceeded while running (${failure.error})`
  }
  const exitCode = prop(error, 'exitCode')
  if (typeof exitCode === 'number' && Number.isInteger(exitCode)) failure.exitCode = exitCode
  const imageDigest = prop(error, 'imageDigest')
  if (typeof imageDigest === 'string' && imageDigest !== '') failure.imageDigest = imageDigest
  // The container's own last words are usually the real reason (a missing file, a bad argument).
  const stderrTail = prop(error, 'stderrTail')
  if (typeof stderrTail === 'string' && stderrTail.trim() !== '') {
    failure.error += `; stderr: ${stderrTail.trim().slice(-STDERR_IN_ERROR_CHARS)}`
  }
  return failure
}
