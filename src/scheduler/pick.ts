import type { Heartbeat } from '../mesh/messages.ts'

/**
 * The worker for a job: a live worker serving every container of the chain, with a free slot,
 * least loaded first (free slots, then mean latency), never one already tried for this job.
 */
export function pickWorker (candidates: Heartbeat[], containers: string[], exclude: ReadonlySet<string>): Heartbeat | undefined {
  const capable = candidates.filter((h) =>
    h.roles.includes('worker') && !exclude.has(h.nodeId) && containers.every((c) => h.containers.includes(c)))
  if (capable.length === 0) return undefined
  const score = (h: Heartbeat): number => (h.stats?.load ?? 0) * 1000 + (h.stats?.avgLatencyMs ?? 0) / 1000
  const withRoom = capable.filter((h) => h.freeSlots > 0)
  const pool = withRoom.length > 0 ? withRoom : capable
  return [...pool].sort((a, b) => b.freeSlots - a.freeSlots || score(a) - score(b) || a.nodeId.localeCompare(b.nodeId))[0]
}
