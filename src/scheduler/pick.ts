import type { Heartbeat } from '../protocol/index.ts'

/** What this scheduler knows of a worker beyond its last heartbeat (heartbeats are seconds apart). */
export interface WorkerUse {
  /** Jobs this scheduler has running there now (accepted, no result yet). */
  inFlight: number
  /** When this scheduler last assigned it a job (0 = never). */
  lastAssignedMs: number
  /** Assignments in a row it did not acknowledge (reset by an ack). */
  misses: number
  /** Not picked before this instant (0 = no cool-down): a worker that stays silent waits longer each time. */
  coolUntilMs: number
}

/** First cool-down after a missed ack: short, since one miss may be a blip on a busy machine. */
const COOL_DOWN_BASE_MS = 5_000
/** Cool-downs double with each miss in a row up to this: a dead or hostile worker costs one ack timeout per 5 min. */
const COOL_DOWN_MAX_MS = 300_000

/** How long a worker with `misses` missed acks in a row sits out. */
export function coolDown (misses: number): number {
  return Math.min(COOL_DOWN_MAX_MS, COOL_DOWN_BASE_MS * 2 ** Math.max(0, Math.min(misses - 1, 20)))
}

/**
 * The worker for a job: a live worker serving every container of the chain, with a free slot,
 * least loaded first (free slots less this scheduler's own jobs there since, then load and mean
 * latency), the one assigned longest ago among equals, never one already tried for this job nor one
 * sitting out a cool-down for missed acks.
 */
export function pickWorker (candidates: Heartbeat[], containers: string[], exclude: ReadonlySet<string>,
  use: ReadonlyMap<string, WorkerUse> = new Map(), now = Date.now()): Heartbeat | undefined {
  const capable = candidates.filter((h) =>
    h.roles.includes('worker') && !exclude.has(h.nodeId) && (use.get(h.nodeId)?.coolUntilMs ?? 0) <= now &&
    containers.every((c) => h.containers.includes(c)))
  if (capable.length === 0) return undefined
  const free = (h: Heartbeat): number => h.freeSlots - (use.get(h.nodeId)?.inFlight ?? 0)
  const score = (h: Heartbeat): number => (h.stats?.load ?? 0) * 1000 + (h.stats?.avgLatencyMs ?? 0) / 1000
  const last = (h: Heartbeat): number => use.get(h.nodeId)?.lastAssignedMs ?? 0
  const withRoom = capable.filter((h) => free(h) > 0)
  const pool = withRoom.length > 0 ? withRoom : capable
  return [...pool].sort((a, b) => free(b) - free(a) || score(a) - score(b) || last(a) - last(b) || a.nodeId.localeCompare(b.nodeId))[0]
}
