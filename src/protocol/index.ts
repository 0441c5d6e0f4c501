/** Interim: the protocol layer's public names, wrapping the mesh codecs until the generated codecs land. */
import { decodeStrict, encodeMessage } from '../wire/index.ts'

export * from './constants.ts'
export {
  encodeHeartbeat, decodeHeartbeat, encodeAssignment, decodeAssignment, encodeAck, decodeAck,
  encodeJobResult, decodeJobResult, encodeFetchRequest, decodeFetchRequest, encodeFetchResponse, decodeFetchResponse
} from '../mesh/messages.ts'
export type { Heartbeat, HeartbeatStats, Assignment, AssignmentAck, JobResultNotice, FetchRequest, FetchResponse } from '../mesh/messages.ts'
export { MalformedMessageError } from '../wire/index.ts'

export interface Attestation {
  receiptHash: Uint8Array
  jobId: string
  workerId: string
  validatorId: string
  verdict: string
  method: string
  outputHash: Uint8Array
  reason: string
  atMs: number
}

export const encodeAttestation = (m: Attestation): Uint8Array => encodeMessage('inframind.v1.Attestation', m as unknown as Record<string, unknown>)
export const decodeAttestation = (b: Uint8Array): Attestation => decodeStrict<Attestation>('inframind.v1.Attestation', b)
