/**
 * The worker's side of streaming output: while a job assigned over gRPC runs, its output goes to the
 * scheduler that assigned it, piece by piece, over that scheduler's public Node.ReportOutput. Each
 * piece is a signed OutputChunkNotice with the bytes sealed to the scheduler, so only it can read them
 * and only this worker can have sent them. One call in flight per job: what the job writes meanwhile
 * is merged into the next piece (the jobs service's output stream keeps it, bounded by the output
 * cap), so a slow scheduler slows the stream, never the job, and costs no memory here.
 */
import { signEnvelope } from '../envelope/index.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { Identity } from '../identity/types.ts'
import type { JobsService } from '../gateway/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import { encodeOutputChunk, PAYLOAD_TYPES } from '../protocol/index.ts'
import { grpcTarget, type Mesh } from '../mesh/index.ts'
import { sealTo, SEAL_CONTEXTS } from '../seal/index.ts'

/** One piece sent: the scheduler answers at once; longer means trouble, and the final result carries the output anyway. */
const CHUNK_CALL_TIMEOUT_MS = 5_000

/** Sends a signed output chunk to a scheduler's public ReportOutput. */
export interface OutputReporter {
  reportOutput(address: string, chunk: SignedEnvelope, signal: AbortSignal): Promise<{ accepted: boolean, reason: string }>
}

export interface OutputForwarder {
  /** Streams the job's output to its scheduler at `replyAddress` until the job ends; replaces an earlier follow of the same job. */
  follow(jobId: string, schedulerId: string, replyAddress: string): void
  /** The job ended: its result goes with the output, so the live stream stops. */
  ended(jobId: string): void
  stop(): void
}

export function outputForwarder (d: { jobs: JobsService, identity: Identity, mesh: Mesh, reporter: OutputReporter, logger: Logger }): OutputForwarder {
  const running = new Map<string, AbortController>()

  const forward = async (jobId: string, schedulerId: string, address: string, signal: AbortSignal): Promise<void> => {
    let offset = 0
    for await (const chunk of d.jobs.outputStream(jobId, { signal })) {
      const notice = encodeOutputChunk({
        jobId,
        workerId: d.identity.nodeId,
        schedulerId,
        offset,
        sealedData: sealTo(schedulerId, chunk.data, SEAL_CONTEXTS.outputChunk(jobId)),
        atMs: Date.now()
      })
      const verdict = await d.reporter.reportOutput(address, signEnvelope(d.identity, PAYLOAD_TYPES.outputChunk, notice), AbortSignal.any([signal, AbortSignal.timeout(CHUNK_CALL_TIMEOUT_MS)]))
      // Refused: the scheduler no longer waits for this job from us (reassigned, answered, restarted).
      if (!verdict.accepted) {
        d.logger.debug({ job: jobId, reason: verdict.reason }, 'scheduler refused live output; not streaming it further')
        return
      }
      offset += chunk.data.byteLength
    }
  }

  return {
    follow (jobId, schedulerId, replyAddress) {
      running.get(jobId)?.abort()
      const from = d.mesh.peers().find((p) => p.nodeId === schedulerId)?.addresses ?? []
      const address = grpcTarget(replyAddress, from)
      if (address === '') return
      const controller = new AbortController()
      running.set(jobId, controller)
      forward(jobId, schedulerId, address, controller.signal)
        .catch((err: unknown) => {
          // Live output is a convenience: the job's result (with the whole output) goes by ReportResult.
          if (!controller.signal.aborted) d.logger.debug({ job: jobId, err: (err as Error).message }, 'live output stopped')
        })
        .finally(() => { if (running.get(jobId) === controller) running.delete(jobId) })
      // A job that ended before this follow began: its result goes as a whole.
      d.jobs.get(jobId).then((job) => {
        if (job === undefined || job.state === 'success' || job.state === 'failed') controller.abort()
      }, () => controller.abort())
    },
    ended (jobId) {
      running.get(jobId)?.abort()
      running.delete(jobId)
    },
    stop () {
      for (const controller of running.values()) controller.abort()
      running.clear()
    }
  }
}
