/**
 * Live output of the mesh jobs this scheduler has out: a worker streams a running job's output to the
 * scheduler that assigned it (Node.ReportOutput, one signed OutputChunkNotice per piece, the bytes
 * sealed to the scheduler), and only the worker the job is with at that moment is heard. Nothing is
 * gossiped; the chunks go to the job's gateway (this node) and nowhere else.
 */
import { verifyEnvelope } from '../envelope/index.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import type { Identity } from '../identity/types.ts'
import { decodeOutputChunk, PAYLOAD_TYPES, type OutputChunkNotice } from '../protocol/index.ts'
import { openSealed, SEAL_CONTEXTS } from '../seal/index.ts'
import type { RemoteOutput } from '../gateway/types.ts'

/** What the scheduler says of a chunk: accepted = false tells the worker to stop sending this job's output. */
export interface OutputVerdict { accepted: boolean, reason: string }

export interface OutputDesk {
  /**
   * Takes chunks of `jobId` while it runs: from the worker `workerOf()` names at each chunk's arrival
   * ('' = none now), to `deliver`. Returns the close function (the job's result came, or it gave up).
   */
  open(jobId: string, workerOf: () => string, deliver: (chunk: RemoteOutput) => void): () => void
  /** A worker's signed chunk: checked (payload, job in flight with that worker, signature, freshness, seal), then delivered. */
  accept(envelope: SignedEnvelope): OutputVerdict
}

export function outputDesk (d: { identity: Identity, maxClockSkewMs: number }): OutputDesk {
  const open = new Map<string, { workerOf: () => string, deliver: (chunk: RemoteOutput) => void }>()
  const refuse = (reason: string): OutputVerdict => ({ accepted: false, reason })
  return {
    open (jobId, workerOf, deliver) {
      const entry = { workerOf, deliver }
      open.set(jobId, entry)
      return () => { if (open.get(jobId) === entry) open.delete(jobId) }
    },
    accept (envelope) {
      if (envelope.payloadType !== PAYLOAD_TYPES.outputChunk) return refuse(`payload type ${JSON.stringify(envelope.payloadType.slice(0, 64))}, expected ${PAYLOAD_TYPES.outputChunk}`)
      let notice: OutputChunkNotice
      try {
        notice = decodeOutputChunk(envelope.payload)
      } catch (err) {
        return refuse(`malformed output chunk: ${(err as Error).message}`)
      }
      // The cheap checks first: a chunk for no job of ours costs a decode, not a signature check.
      if (notice.schedulerId !== d.identity.nodeId) return refuse(`job ${notice.jobId} was assigned by ${notice.schedulerId}, not by this scheduler`)
      const entry = open.get(notice.jobId)
      if (entry === undefined) return refuse(`no job ${notice.jobId} of this scheduler is running with live output`)
      const worker = entry.workerOf()
      if (worker === '' || worker !== notice.workerId) return refuse(`job ${notice.jobId} is not with ${notice.workerId}`)
      try {
        verifyEnvelope(envelope, { payloadType: PAYLOAD_TYPES.outputChunk })
      } catch (err) {
        return refuse(`bad signature: ${(err as Error).message}`)
      }
      let signer: string
      try {
        signer = nodeIdFromPublicKey(envelope.publicKey)
      } catch (err) {
        return refuse(`not a valid signer key: ${(err as Error).message}`)
      }
      if (signer !== notice.workerId) return refuse(`signed by ${signer}, not by the worker it names`)
      const skew = Math.abs(Date.now() - notice.atMs)
      if (skew > d.maxClockSkewMs) return refuse(`stamped ${skew} ms away from this node's clock (over mesh.max_clock_skew_ms)`)
      if (!Number.isSafeInteger(notice.offset)) return refuse('offset out of range')
      let data: Uint8Array
      try {
        data = openSealed(d.identity, notice.sealedData, SEAL_CONTEXTS.outputChunk(notice.jobId))
      } catch (err) {
        return refuse(`the sealed bytes do not open with this scheduler's key: ${(err as Error).message}`)
      }
      entry.deliver({ offset: notice.offset, data, workerId: signer })
      return { accepted: true, reason: '' }
    }
  }
}
