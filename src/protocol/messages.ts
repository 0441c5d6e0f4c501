/** Named codecs of the mesh messages: the signed gossip payloads and the fetch protocol. */
import type * as G from './generated.ts'
import { decodeStrict, encode } from './codec.ts'
import { MalformedMessageError } from './errors.ts'

export type { Heartbeat, HeartbeatStats, Assignment, AssignmentSecret, JobOrigin, AssignmentAck, JobResultNotice, OutputChunkNotice, Attestation, FetchRequest, Roster, RosterMember, RosterNotice, VerificationPolicy, Certificate, DisputeRecord } from './generated.ts'

export const encodeHeartbeat = (m: G.Heartbeat): Uint8Array => encode('inframind.v1.Heartbeat', m)
export const decodeHeartbeat = (b: Uint8Array): G.Heartbeat => decodeStrict('inframind.v1.Heartbeat', b)
export const encodeAssignment = (m: G.Assignment): Uint8Array => encode('inframind.v1.Assignment', m)
export const decodeAssignment = (b: Uint8Array): G.Assignment => decodeStrict('inframind.v1.Assignment', b)
export const encodeAck = (m: G.AssignmentAck): Uint8Array => encode('inframind.v1.AssignmentAck', m)
export const decodeAck = (b: Uint8Array): G.AssignmentAck => decodeStrict('inframind.v1.AssignmentAck', b)
export const encodeJobResult = (m: G.JobResultNotice): Uint8Array => encode('inframind.v1.JobResultNotice', m)
export const decodeJobResult = (b: Uint8Array): G.JobResultNotice => decodeStrict('inframind.v1.JobResultNotice', b)
export const encodeOutputChunk = (m: G.OutputChunkNotice): Uint8Array => encode('inframind.v1.OutputChunkNotice', m)
export const decodeOutputChunk = (b: Uint8Array): G.OutputChunkNotice => decodeStrict('inframind.v1.OutputChunkNotice', b)
export const encodeAttestation = (m: G.Attestation): Uint8Array => encode('inframind.v1.Attestation', m)
export const decodeAttestation = (b: Uint8Array): G.Attestation => decodeStrict('inframind.v1.Attestation', b)
export const encodeAssignmentSecret = (m: G.AssignmentSecret): Uint8Array => encode('inframind.v1.AssignmentSecret', m)
export const decodeAssignmentSecret = (b: Uint8Array): G.AssignmentSecret => decodeStrict('inframind.v1.AssignmentSecret', b)
export const encodeRoster = (m: G.Roster): Uint8Array => encode('inframind.v1.Roster', m)
export const decodeRoster = (b: Uint8Array): G.Roster => decodeStrict('inframind.v1.Roster', b)
export const encodeRosterNotice = (m: G.RosterNotice): Uint8Array => encode('inframind.v1.RosterNotice', m)
export const decodeRosterNotice = (b: Uint8Array): G.RosterNotice => decodeStrict('inframind.v1.RosterNotice', b)
export const encodeCertificate = (m: G.Certificate): Uint8Array => encode('inframind.v1.Certificate', m)
export const decodeCertificate = (b: Uint8Array): G.Certificate => decodeStrict('inframind.v1.Certificate', b)
export const encodeDisputeRecord = (m: G.DisputeRecord): Uint8Array => encode('inframind.v1.DisputeRecord', m)
export const decodeDisputeRecord = (b: Uint8Array): G.DisputeRecord => decodeStrict('inframind.v1.DisputeRecord', b)
export const encodeFetchRequest = (m: G.FetchRequest): Uint8Array => encode('inframind.v1.FetchRequest', m)
export const decodeFetchRequest = (b: Uint8Array): G.FetchRequest => decodeStrict('inframind.v1.FetchRequest', b)

/** The statuses mesh.proto lists for FetchResponse.status (a string on the wire, a closed set here). */
export const FETCH_STATUSES = ['OK', 'NOT_FOUND', 'TOO_LARGE', 'ERROR'] as const
export type FetchStatus = typeof FETCH_STATUSES[number]

export interface FetchResponse extends Omit<G.FetchResponse, 'status'> {
  status: FetchStatus
}

export const encodeFetchResponse = (m: FetchResponse): Uint8Array => encode('inframind.v1.FetchResponse', m)

/** Strict decode, and a status outside FETCH_STATUSES is malformed too (the caller switches on it). */
export function decodeFetchResponse (b: Uint8Array): FetchResponse {
  const m = decodeStrict('inframind.v1.FetchResponse', b)
  if (!(FETCH_STATUSES as readonly string[]).includes(m.status)) {
    throw new MalformedMessageError('inframind.v1.FetchResponse', `"${m.status.slice(0, 32)}" is not one of ${FETCH_STATUSES.join(', ')}`, { field: 'status' })
  }
  return m as FetchResponse
}
