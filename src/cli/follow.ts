/**
 * Follows a job's output live (Node.StreamJobOutput) and writes it as it comes.
 *
 * Intended usage (wired by the CLI's commands, not here):
 *   infra submit --follow ...   submit, then `await followJob(client, jobId)`; exit with exitCodeOf(result)
 *   infra logs -f <job>         `await followJob(client, jobId)` on a running or finished job
 * Output bytes go to `out` (default stdout) untouched; nothing else is written there, so
 * `infra logs -f job > out.bin` saves the exact output. The caller prints the ending (state, error) to
 * stderr if it wants. Type-only imports: loading this costs the CLI nothing beyond node:crypto.
 */
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import type { Writable } from 'node:stream'
import type { NodeClient } from '../api/client.ts'

export interface FollowOptions {
  /** Where the output goes (default process.stdout). */
  out?: Writable
  /** Stops following (the job carries on). */
  signal?: AbortSignal
  /** Bound on the whole follow, ms (default: none: a job ends at its own deadline). */
  timeoutMs?: number
}

export interface FollowResult {
  jobId: string
  /** 'success' or 'failed'. */
  state: 'success' | 'failed'
  errorCode: string
  error: string
  /** Bytes written to `out`. */
  bytes: number
  /** For a successful job: what was written is its whole output (size and sha256 match the node's). */
  complete: boolean
  verificationState: string
}

/**
 * Writes the job's output to `out` as the node streams it (waiting for `out` to drain, so a slow
 * terminal or pipe slows the stream rather than filling memory) and resolves with how the job ended.
 * Rejects with the gRPC error: NOT_FOUND (no such job), INVALID_ARGUMENT (bad id), ABORTED with code
 * OUTPUT_RESTARTED (the job ran again elsewhere after part of its output was shown: fetch it whole with
 * `infra job <id>`), CANCELLED when `signal` aborts.
 */
export async function followJob (client: Pick<NodeClient, 'streamJobOutput'>, jobId: string, opts: FollowOptions = {}): Promise<FollowResult> {
  const out = opts.out ?? process.stdout
  const hash = createHash('sha256')
  let bytes = 0
  const callOpts = { ...(opts.signal !== undefined ? { signal: opts.signal } : {}), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) }
  for await (const chunk of client.streamJobOutput(jobId, callOpts)) {
    if (chunk.done) {
      const success = chunk.state === 'JOB_STATE_SUCCESS'
      const complete = success && chunk.outputBytes === bytes && Buffer.from(chunk.outputHash).equals(hash.digest())
      return {
        jobId,
        state: success ? 'success' : 'failed',
        errorCode: chunk.errorCode,
        error: chunk.error,
        bytes,
        complete,
        verificationState: chunk.verificationState
      }
    }
    if (chunk.data.byteLength === 0) continue
    hash.update(chunk.data)
    bytes += chunk.data.byteLength
    if (!out.write(chunk.data)) await once(out, 'drain', opts.signal !== undefined ? { signal: opts.signal } : {})
  }
  // The stream ended without its last message: the node went away mid-stream.
  throw Object.assign(new Error(`the output stream of job ${jobId} ended before the job did (the node stopped?): fetch the job with \`infra job ${jobId}\``), { code: 'STREAM_CUT' })
}

/** The process exit code for a followed job: 0 only for a success whose whole output was shown. */
export function exitCodeOf (result: FollowResult): number {
  return result.state === 'success' && result.complete ? 0 : 1
}
