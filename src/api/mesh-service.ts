import * as grpc from '@grpc/grpc-js'
import type { ApiComponents } from './types.ts'
import type { WireEnvelope, WirePeersResponse } from './wire.ts'
import { envelopeFromWire, envelopeToWire } from './convert.ts'

/** Node.AssignJob: a scheduler's signed assignment in, the worker's signed ack out. */
export function assignJobHandler (c: ApiComponents): grpc.handleUnaryCall<WireEnvelope, WireEnvelope> {
  return (call, callback) => {
    const worker = c.worker
    if (worker === undefined) {
      callback({ code: grpc.status.FAILED_PRECONDITION, details: 'this node takes no assignments: it needs the worker role and mesh.enabled' } as grpc.ServiceError, null)
      return
    }
    let env
    try {
      env = envelopeFromWire(call.request)
    } catch (err) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: `not a signed assignment: ${(err as Error).message}` } as grpc.ServiceError, null)
      return
    }
    worker.handleAssignment(env).then((r) => callback(null, envelopeToWire(r.envelope)), (err: unknown) => {
      c.logger.error({ err }, 'AssignJob failed')
      callback({ code: grpc.status.INTERNAL, details: 'internal error handling the assignment' } as grpc.ServiceError, null)
    })
  }
}

/** Control.ListPeers: who is on the mesh, from heartbeats, connections and pings. */
export function listPeersHandler (c: ApiComponents): grpc.handleUnaryCall<unknown, WirePeersResponse> {
  return (_call, callback) => {
    const m = c.mesh
    if (m === undefined) {
      callback(null, { nodeId: c.identity.nodeId, addresses: [], peers: [], rejected: {} })
      return
    }
    callback(null, {
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
        load: p.heartbeat?.stats?.load ?? 0
      })),
      rejected: m.rejections()
    })
  }
}
