import type * as grpc from '@grpc/grpc-js'
import type { ApiComponents } from './types.ts'
import type { ContainerInfo, NodeEvent, NodeStatus, ReputationResponse, RosterStatus, UpdateRosterRequest } from '../protocol/generated.ts'
import { containerToWire, envelopeFromWire, envelopeToWire, stateToWire } from './convert.ts'
import { containerInfos, liveStates } from './containers.ts'
import { InvalidRequestError, NoRosterError, NotASchedulerError } from './errors.ts'
import { unary } from './unary.ts'
import type { JobEvent } from '../gateway/types.ts'
import type { ContainerEvent } from '../runtime/types.ts'
import type { Scheduler } from '../scheduler/index.ts'

/** Local-only service: status, containers and the live event stream. Bound to loopback or a unix socket. */
export function controlServiceHandlers (c: ApiComponents): grpc.UntypedServiceImplementation {
  return {
    GetStatus: unary(c.logger, 'GetStatus', async (): Promise<NodeStatus> => await status(c)),

    ListContainers: unary(c.logger, 'ListContainers', async () => ({ containers: await containersWithState(c) })),

    // Refusals (unsigned, unknown operator, wrong mesh, expired, stale, malformed) map to a status in errors.ts.
    UpdateRoster: unary(c.logger, 'UpdateRoster', async (req: UpdateRosterRequest): Promise<RosterStatus> => {
      const roster = c.roster
      if (roster === undefined) throw new NoRosterError()
      if (req.roster == null) throw new InvalidRequestError('roster is required: the signed roster from "infra roster sign"')
      const held = await roster.book.apply(envelopeFromWire(req.roster), 'control')
      // Applied here whatever happens next: peers that miss the notice catch up when they connect.
      await roster.sync?.publish(held.envelope).catch((err: unknown) => c.logger.warn({ err, version: held.roster.version }, 'roster applied but not passed on to the mesh'))
      return rosterStatus(c)
    }),

    GetRoster: unary(c.logger, 'GetRoster', async (): Promise<RosterStatus> => rosterStatus(c)),

    GetReputation: unary(c.logger, 'GetReputation', async (): Promise<ReputationResponse> => {
      if (c.scheduler === undefined) throw new NotASchedulerError()
      return reputationOf(c.scheduler)
    }),

    StreamEvents: (call: grpc.ServerWritableStream<unknown, NodeEvent>) => {
      const unsubscribe = c.jobs.on('job', (event) => { call.write(jobEventToWire(event)) })
      // Container lifecycle (service states) rides the same stream.
      const unsubscribeContainers = c.runtime.onContainerEvent((event) => { call.write(containerEventToWire(event)) })
      const end = (): void => { unsubscribe(); unsubscribeContainers() }
      call.on('cancelled', end)
      call.on('close', end)
      call.on('error', end)
    }
  }
}

function rosterStatus (c: ApiComponents): RosterStatus {
  const held = c.roster?.book.current()
  return {
    mode: c.config.mesh.admission.mode,
    roster: held !== undefined ? envelopeToWire(held.envelope) : null,
    version: held?.roster.version ?? 0,
    operators: c.config.mesh.admission.operators
  }
}

/** The scheduler's records of the workers it assigned to, lowest score first (GetReputation, the dashboard). */
export function reputationOf (scheduler: Pick<Scheduler, 'reputation'>): ReputationResponse {
  return { nodes: scheduler.reputation().sort((a, b) => a.score - b.score || a.nodeId.localeCompare(b.nodeId)) }
}

/** A StreamEvents job event: ids and states only, never inputs, outputs or origins. */
export function jobEventToWire (event: JobEvent): NodeEvent {
  return { atMs: event.atMs, kind: 'job', jobId: event.jobId, state: stateToWire(event.state), containerId: event.containerId, detail: event.detail }
}

/** A StreamEvents container event (service lifecycle): its state, and what went wrong when it did. */
export function containerEventToWire (event: ContainerEvent): NodeEvent {
  return { atMs: event.atMs, kind: 'container', jobId: '', state: 'JOB_STATE_UNSPECIFIED', containerId: event.containerId, detail: `${event.state}${event.detail !== '' ? `: ${event.detail}` : ''}` }
}

/** GetStatus (and the dashboard's identity and counters). */
export async function status (c: ApiComponents): Promise<NodeStatus> {
  const stats = c.jobs.stats()
  const sys = c.telemetry.sample()
  return {
    nodeId: c.identity.nodeId,
    version: c.version,
    jobsServed: stats.served,
    avgLatencyMs: stats.avgLatencyMs,
    uptimeMs: Date.now() - c.startedAtMs,
    succeeded: stats.succeeded,
    failed: stats.failed,
    activeJobs: stats.active,
    queuedJobs: stats.queued,
    cpuPercent: sys.cpuPercent,
    rssBytes: sys.rssBytes,
    memoryTotalBytes: sys.memoryTotalBytes,
    memoryUsedBytes: sys.memoryUsedBytes,
    containers: await containersWithState(c),
    roles: c.config.node.roles,
    metricsUrl: c.telemetry.metricsUrl(),
    imageCacheHits: c.images?.stats().hits ?? 0,
    imageCacheMisses: c.images?.stats().misses ?? 0,
    imageCacheHitRatio: c.images?.stats().hitRatio ?? 1,
    guardianRejections: stats.guardianRejections,
    meshJobsInFlight: stats.meshInFlight,
    containersReapedAtStart: c.runtime.stats().reapedAtStart
  }
}

/** Every configured container with its image readiness and live state (one status read for all). */
export async function containersWithState (c: ApiComponents): Promise<ContainerInfo[]> {
  const live = liveStates(c)
  return (await containerInfos(c)).map(([cfg, present]) => containerToWire(cfg, present, live.get(cfg.id)))
}
