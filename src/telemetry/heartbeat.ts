import type { Heartbeat } from '../protocol/index.ts'

/** The parts of a heartbeat only the rest of the node knows (load, stats, address); the mesh adds identity and time. */
export type HeartbeatFields = Pick<Heartbeat, 'cpuCores' | 'memoryBytes' | 'gpus' | 'grpcAddress' | 'freeSlots' | 'stats' | 'rosterVersion'>

export interface HeartbeatSources {
  hardware: { cpuCores: number, memoryBytes: number, gpus: readonly unknown[] }
  /** Where peers can call this node's gRPC ('' = nowhere: behind NAT, or not listening yet). */
  grpcAddress: () => string
  /** The executor's slots: only they are free capacity for workers' assignments. */
  slots: () => { concurrency: number, active: number, waiting: number }
  jobs: () => { succeeded: number, failed: number, avgLatencyMs: number }
  cacheHitRatio: () => number
  /** Version of the roster this node holds (0 = none). */
  rosterVersion: () => number
}

/**
 * What this node tells the mesh about itself every heartbeat: capacity and load, never job inputs,
 * outputs or origins. Free slots count only the executor: a gateway's mesh jobs wait on the network.
 */
export function heartbeatFields (s: HeartbeatSources): () => HeartbeatFields {
  return () => {
    const slots = s.slots()
    const jobs = s.jobs()
    return {
      cpuCores: s.hardware.cpuCores,
      memoryBytes: s.hardware.memoryBytes,
      gpus: s.hardware.gpus.length,
      grpcAddress: s.grpcAddress(),
      freeSlots: Math.max(0, slots.concurrency - slots.active - slots.waiting),
      rosterVersion: s.rosterVersion(),
      stats: {
        activeJobs: slots.active,
        queuedJobs: slots.waiting,
        succeeded: jobs.succeeded,
        failed: jobs.failed,
        avgLatencyMs: jobs.avgLatencyMs,
        cacheHitRatio: s.cacheHitRatio(),
        load: (slots.active + slots.waiting) / slots.concurrency
      }
    }
  }
}
