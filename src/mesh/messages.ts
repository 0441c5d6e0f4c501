/** Typed views of the mesh.proto messages (camelCase, 64-bit ints as numbers, bytes as Uint8Array). */
import { decodeStrict, encodeMessage } from '../wire/index.ts'
import type { SignedEnvelope } from '../envelope/types.ts'

export interface HeartbeatStats {
  activeJobs: number
  queuedJobs: number
  succeeded: number
  failed: number
  avgLatencyMs: number
  cacheHitRatio: number
  load: number
}

export interface Heartbeat {
  nodeId: string
  atMs: number
  roles: string[]
  containers: string[]
  cpuCores: number
  memoryBytes: number
  gpus: number
  grpcAddress: string
  freeSlots: number
  stats: HeartbeatStats | null
  intervalMs: number
}

export interface Assignment {
  jobId: string
  containers: string[]
  input: Uint8Array
  inputHash: Uint8Array
  inputSize: number
  inputProvider: string
  workerId: string
  schedulerId: string
  issuedAtMs: number
  deadlineAtMs: number
  requiresProof: boolean
}

export interface AssignmentAck {
  jobId: string
  workerId: string
  schedulerId: string
  accepted: boolean
  code: string
  reason: string
  atMs: number
  duplicate: boolean
}

export interface JobResultNotice {
  receipt: SignedEnvelope | null
  output: Uint8Array
  outputInline: boolean
  outputSize: number
  atMs: number
}

export interface FetchRequest { hash: Uint8Array }
export interface FetchResponse { status: 'OK' | 'NOT_FOUND' | 'TOO_LARGE' | 'ERROR', data: Uint8Array, error: string }

const T = {
  heartbeat: 'inframind.v1.Heartbeat',
  assignment: 'inframind.v1.Assignment',
  ack: 'inframind.v1.AssignmentAck',
  jobResult: 'inframind.v1.JobResultNotice',
  fetchRequest: 'inframind.v1.FetchRequest',
  fetchResponse: 'inframind.v1.FetchResponse'
} as const

export const encodeHeartbeat = (m: Heartbeat): Uint8Array => encodeMessage(T.heartbeat, m as unknown as Record<string, unknown>)
export const decodeHeartbeat = (b: Uint8Array): Heartbeat => decodeStrict<Heartbeat>(T.heartbeat, b)
export const encodeAssignment = (m: Assignment): Uint8Array => encodeMessage(T.assignment, m as unknown as Record<string, unknown>)
export const decodeAssignment = (b: Uint8Array): Assignment => decodeStrict<Assignment>(T.assignment, b)
export const encodeAck = (m: AssignmentAck): Uint8Array => encodeMessage(T.ack, m as unknown as Record<string, unknown>)
export const decodeAck = (b: Uint8Array): AssignmentAck => decodeStrict<AssignmentAck>(T.ack, b)
export const encodeJobResult = (m: JobResultNotice): Uint8Array => encodeMessage(T.jobResult, m as unknown as Record<string, unknown>)
export const decodeJobResult = (b: Uint8Array): JobResultNotice => decodeStrict<JobResultNotice>(T.jobResult, b)
export const encodeFetchRequest = (m: FetchRequest): Uint8Array => encodeMessage(T.fetchRequest, m as unknown as Record<string, unknown>)
export const decodeFetchRequest = (b: Uint8Array): FetchRequest => decodeStrict<FetchRequest>(T.fetchRequest, b)
export const encodeFetchResponse = (m: FetchResponse): Uint8Array => encodeMessage(T.fetchResponse, m as unknown as Record<string, unknown>)
export const decodeFetchResponse = (b: Uint8Array): FetchResponse => decodeStrict<FetchResponse>(T.fetchResponse, b)
