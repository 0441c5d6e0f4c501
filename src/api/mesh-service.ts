import * as grpc from '@grpc/grpc-js'
import type { ApiComponents } from './types.ts'
import type { ListPeersResponse, ReportResultResponse, SignedEnvelope } from '../protocol/index.ts'
import { envelopeFromWire, envelopeToWire } from './convert.ts'
import { InvalidAssignmentError, NotASchedulerError, NotAWorkerError } from './errors.ts'
import { unary } from './unary.ts'

/** The request's signed envelope, or INVALID_ASSIGNMENT saying what is wrong with it. */
function envelopeArg (request: SignedEnvelope): SignedEnvelope {
  try {
    return envelopeFromWire(request)
  } catch (err) {
    throw new InvalidAssignmentError((err as Error).message, { cause: err })
  }
}

/** Node.AssignJob: a scheduler's signed assignment in, the worker's signed ack out. */
export function assignJobHandler (c: ApiComponents): grpc.handleUnaryCall<SignedEnvelope, SignedEnvelope> {
  return unary(c.logger, 'AssignJob', async (request: SignedEnvelope): Promise<SignedEnvelope> => {
    const worker = c.worker
    if (worker === undefined) throw new NotAWorkerError()
    return envelopeToWire((await worker.handleAssignment(envelopeArg(request))).envelope)
  })
}

/** Node.ReportResult: a worker's signed result notice for a job this node's scheduler assigned to it. */
export function reportResultHandler (c: ApiComponents): grpc.handleUnaryCall<SignedEnvelope, ReportResultResponse> {
  return unary(c.logger, 'ReportResult', async (request: SignedEnvelope): Promise<ReportResultResponse> => {
    const scheduler = c.scheduler
    if (scheduler === undefined) throw new NotASchedulerError()
    return scheduler.acceptResult(envelopeArg(request))
  })
}

/** Control.ListPeers: who is on the mesh, from heartbeats, connections and pings. */
export function listPeersHandler (c: ApiComponents): grpc.handleUnaryCall<unknown, ListPeersResponse> {
  return (_call, callback) => { callback(null, peersOf(c)) }
}

/** ListPeers (and the dashboard's peers): who is on the mesh, as this node sees it now. */
export function peersOf (c: ApiComponents): ListPeersResponse {
  const m = c.mesh
  if (m === undefined) return { nodeId: c.identity.nodeId, addresses: [], peers: [], rejected: {}, ignored: {}, banned: [], admission: '' }
  const reputation = new Map((c.scheduler?.reputation() ?? []).map((r) => [r.nodeId, r]))
  return {
    nodeId: m.nodeId,
    addresses: m.addresses(),
    peers: m.peers().map((p) => ({
      nodeId: p.nodeId,
      roles: p.roles,
      containers: p.containers,
      addresses: p.addresses,
      latencyMs: p.latencyMs,
      lastSeenMs: p.lastSeenMs,
      connected: p.connected,
      alive: p.alive,
      freeSlots: p.heartbeat?.freeSlots ?? 0,
      load: p.heartbeat?.stats?.load ?? 0,
      rosterRoles: [...(c.roster?.book.rolesOf(p.nodeId) ?? [])],
      score: reputation.get(p.nodeId)?.score ?? -1,
      excludedUntilMs: reputation.get(p.nodeId)?.excludedUntilMs ?? 0
    })),
    rejected: m.rejections(),
    ignored: m.ignored(),
    banned: m.banned().map((b) => ({ nodeId: b.nodeId, untilMs: b.untilMs, reason: b.reason })),
    admission: c.config.mesh.admission.mode
  }
}
