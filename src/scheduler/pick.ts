import type { Heartbeat } from '../protocol/index.ts'
import type { Placement } from '../store/types.ts'
import { rendezvousOrder } from '../rendezvous.ts'

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
 * What the scheduler's reputation says of a worker (src/scheduler/reputation.ts): its score (0..1),
 * the mean latency of its acks (0 = none measured yet) and when an outcome was last recorded for it
 * (epoch ms), the clock by which a worker ranked down gets its turn back.
 */
export interface Standing {
  score: number
  ackLatencyMs: number
  updatedAtMs: number
}

/** A score this far below the best candidate's is one band down (0.9: one failure for every nine successes). */
const SCORE_BAND = 0.1
/** Ack latencies under this are one machine's jitter (a busy event loop, a GC pause), not a slower worker. */
const ACK_LATENCY_FLOOR_MS = 100
/** Each doubling of ack latency over the fastest candidate's (at least the floor) is one band down, up to this many. */
const MAX_ACK_BANDS = 5
/** At most this many bands down: with BAND_AGE_MS, a worker with room waits at most 5 min, the longest ack cool-down. */
const MAX_BANDS = 10
/**
 * A worker ranked down rises one band for each 30 s it is given nothing and nothing is recorded of it,
 * so one slow ack or one failure costs it turns, never all of them: it is measured again.
 */
const BAND_AGE_MS = 30_000

/**
 * The worker for a job: a live worker serving every container of the chain, never one already tried
 * for this job nor one sitting out a cool-down for missed acks. Among those with a free slot (free
 * slots less this scheduler's own jobs there since the heartbeat), in this order:
 *
 * 1. standing, in bands (when `standing` is given): one band down for each 0.1 of score below the
 *    best candidate's and for each doubling of ack latency over the fastest candidate's (at least
 *    100 ms), at most 10; a worker with no record is in the top band. A worker rises a band for
 *    each 30 s since it was last assigned a job or had an outcome recorded, so it is tried again.
 * 2. most free slots, then least heartbeat load, then least mean job latency;
 * 3. the one assigned longest ago, so workers in one band take turns.
 *
 * Bands rather than exact values so that near-equal workers (scores a few hundredths apart, acks in
 * the same range) share the work. When no worker has a free slot, the one with the most (the
 * shortest queue) gets it, standing next.
 */
export function pickWorker (candidates: Heartbeat[], containers: string[], exclude: ReadonlySet<string>,
  use: ReadonlyMap<string, WorkerUse> = new Map(), now = Date.now(),
  standing?: (nodeId: string) => Standing | undefined): Heartbeat | undefined {
  const capable = candidates.filter((h) =>
    h.roles.includes('worker') && !exclude.has(h.nodeId) && (use.get(h.nodeId)?.coolUntilMs ?? 0) <= now &&
    containers.every((c) => h.containers.includes(c)))
  if (capable.length === 0) return undefined
  const free = (h: Heartbeat): number => h.freeSlots - (use.get(h.nodeId)?.inFlight ?? 0)
  const busy = (h: Heartbeat): number => (h.stats?.load ?? 0) * 1000 + (h.stats?.avgLatencyMs ?? 0) / 1000
  const last = (h: Heartbeat): number => use.get(h.nodeId)?.lastAssignedMs ?? 0
  const withRoom = capable.filter((h) => free(h) > 0)
  const pool = withRoom.length > 0 ? withRoom : capable
  const band = bands(pool, use, now, standing)
  const byStanding = (a: Heartbeat, b: Heartbeat): number => band.get(a.nodeId)! - band.get(b.nodeId)!
  const byRoom = (a: Heartbeat, b: Heartbeat): number => free(b) - free(a)
  const [first, second] = withRoom.length > 0 ? [byStanding, byRoom] : [byRoom, byStanding]
  return [...pool].sort((a, b) => first(a, b) || second(a, b) || busy(a) - busy(b) || last(a) - last(b) || a.nodeId.localeCompare(b.nodeId))[0]
}

/** How many bands down each worker of `pool` is (0 = the top), as pickWorker's doc comment says. */
function bands (pool: Heartbeat[], use: ReadonlyMap<string, WorkerUse>, now: number,
  standing: ((nodeId: string) => Standing | undefined) | undefined): Map<string, number> {
  const of = new Map(pool.map((h) => [h.nodeId, standing?.(h.nodeId)]))
  // No record is a score of 1 (nothing seen to fail) and no ack measured (not a reference, not slow).
  const best = Math.max(...[...of.values()].map((s) => s?.score ?? 1))
  const acks = [...of.values()].map((s) => s?.ackLatencyMs ?? 0).filter((ms) => ms > 0)
  const fastest = Math.max(ACK_LATENCY_FLOOR_MS, ...acks.length > 0 ? [Math.min(...acks)] : [])
  const band = new Map<string, number>()
  for (const [id, s] of of) {
    if (s === undefined) { band.set(id, 0); continue }
    // A hair under a band's edge is on it: 0.9 is one band below 1, not none (float subtraction).
    const down = Math.floor((best - s.score) / SCORE_BAND + 1e-9)
    const slow = s.ackLatencyMs > fastest ? Math.min(MAX_ACK_BANDS, Math.floor(Math.log2(s.ackLatencyMs / fastest) + 1e-9)) : 0
    const since = Math.max(use.get(id)?.lastAssignedMs ?? 0, s.updatedAtMs)
    const risen = Math.floor(Math.max(0, now - since) / BAND_AGE_MS)
    band.set(id, Math.max(0, Math.min(MAX_BANDS, Math.max(0, down) + slow) - risen))
  }
  return band
}

/**
 * The worker a placed job goes to first: among live workers serving the whole chain (not excluded),
 * the `slot`-th in rendezvous order of `placement.key` (wrapping around). Load, standing and
 * cool-downs are ignored on purpose: every gateway must reach the same worker, which may already
 * hold the job (a client retrying its idempotency key through another gateway, a scheduler taking
 * over a subscription), and would then hand it over rather than run it twice. A failed first
 * attempt falls back to pickWorker.
 */
export function placeWorker (candidates: Heartbeat[], containers: string[], exclude: ReadonlySet<string>, placement: Placement): Heartbeat | undefined {
  const capable = candidates.filter((h) => h.roles.includes('worker') && !exclude.has(h.nodeId) && containers.every((c) => h.containers.includes(c)))
  if (capable.length === 0) return undefined
  const order = rendezvousOrder(placement.key, capable.map((h) => h.nodeId))
  const id = order[Math.max(0, Math.trunc(placement.slot)) % order.length]
  return capable.find((h) => h.nodeId === id)
}
