import test from 'ava'
import type { Heartbeat } from '../../src/protocol/index.ts'
import { coolDown, pickWorker, placeWorker, Reputation, type WorkerUse } from '../../src/scheduler/index.ts'
import { rendezvousOrder } from '../../src/rendezvous.ts'
import type { Standing } from '../../src/scheduler/pick.ts'

function worker (nodeId: string, fields: Partial<Heartbeat> = {}): Heartbeat {
  return {
    nodeId, atMs: 0, roles: ['worker'], containers: ['echo'], cpuCores: 2, memoryBytes: 1, gpus: 0,
    grpcAddress: '', freeSlots: 2, stats: null, intervalMs: 2000, rosterVersion: 0, ...fields
  }
}

const use = (entries: Record<string, Partial<WorkerUse>>): Map<string, WorkerUse> =>
  new Map(Object.entries(entries).map(([id, u]) => [id, { inFlight: 0, lastAssignedMs: 0, misses: 0, coolUntilMs: 0, ...u }]))

test('only a worker serving every container of the chain, not yet tried, is picked', (t) => {
  const ws = [worker('a', { containers: ['echo'] }), worker('b', { containers: ['echo', 'sentiment'] }), worker('c', { roles: ['validator'], containers: ['echo', 'sentiment'] })]
  t.is(pickWorker(ws, ['echo', 'sentiment'], new Set())?.nodeId, 'b')
  t.is(pickWorker(ws, ['echo', 'sentiment'], new Set(['b'])), undefined)
  t.is(pickWorker(ws, ['echo'], new Set(['a']))?.nodeId, 'b')
})

test('jobs this scheduler placed since the last heartbeat count against a worker\'s free slots', (t) => {
  const ws = [worker('a', { freeSlots: 2 }), worker('b', { freeSlots: 2 })]
  t.is(pickWorker(ws, ['echo'], new Set(), use({ a: { inFlight: 2 } }))?.nodeId, 'b')
  t.is(pickWorker(ws, ['echo'], new Set(), use({ a: { inFlight: 1 } }))?.nodeId, 'b')
  // Everyone full: the least loaded still gets it (the worker queues it).
  t.is(pickWorker(ws, ['echo'], new Set(), use({ a: { inFlight: 3 }, b: { inFlight: 2 } }))?.nodeId, 'b')
})

test('among equally idle workers the one assigned longest ago goes next, so work spreads', (t) => {
  const ws = [worker('a'), worker('b'), worker('c')]
  const u = use({})
  const order: string[] = []
  for (let i = 0; i < 6; i++) {
    const w = pickWorker(ws, ['echo'], new Set(), u)!
    order.push(w.nodeId)
    u.set(w.nodeId, { inFlight: 0, lastAssignedMs: i + 1, misses: 0, coolUntilMs: 0 })
  }
  t.deepEqual(order, ['a', 'b', 'c', 'a', 'b', 'c'])
})

test('heartbeat load outranks recency', (t) => {
  const busy = worker('a', { stats: { activeJobs: 1, queuedJobs: 0, succeeded: 0, failed: 0, avgLatencyMs: 5, cacheHitRatio: 1, load: 0.5 } })
  t.is(pickWorker([busy, worker('b')], ['echo'], new Set(), use({ b: { lastAssignedMs: 99 } }))?.nodeId, 'b')
})

test('a worker sitting out a cool-down for missed acks is not picked until it ends, and cool-downs grow', (t) => {
  const ws = [worker('a', { freeSlots: 8 }), worker('b', { freeSlots: 1 })]
  const u = use({ a: { misses: 1, coolUntilMs: 10_000 } })
  t.is(pickWorker(ws, ['echo'], new Set(), u, 5_000)?.nodeId, 'b')
  t.is(pickWorker([ws[0]!], ['echo'], new Set(), u, 5_000), undefined)
  t.is(pickWorker(ws, ['echo'], new Set(), u, 10_000)?.nodeId, 'a')
  const steps = [1, 2, 3, 4, 10, 40].map(coolDown)
  for (let i = 1; i < steps.length; i++) t.true(steps[i]! >= steps[i - 1]!)
  t.true(steps[1]! > steps[0]!)
  t.is(coolDown(40), coolDown(1000))
})

const standings = (entries: Record<string, Partial<Standing>>) => (id: string): Standing | undefined =>
  entries[id] === undefined ? undefined : { score: 1, ackLatencyMs: 0, updatedAtMs: NOW, ...entries[id] }
const NOW = 1_000_000_000

/** Picks `n` jobs in a row at `now` (each assignment recorded, none finishing), the ids in order. */
function picks (ws: Heartbeat[], u: Map<string, WorkerUse>, n: number, standing: (id: string) => Standing | undefined, now = NOW): string[] {
  const order: string[] = []
  for (let i = 0; i < n; i++) {
    const w = pickWorker(ws, ['echo'], new Set(), u, now, standing)
    if (w === undefined) break
    order.push(w.nodeId)
    u.set(w.nodeId, { ...(u.get(w.nodeId) ?? { inFlight: 0, lastAssignedMs: 0, misses: 0, coolUntilMs: 0 }), lastAssignedMs: now + i + 1 })
  }
  return order
}

test('a clearly lower score is picked after the better workers, even with more free slots', (t) => {
  const ws = [worker('a', { freeSlots: 1 }), worker('b', { freeSlots: 8 }), worker('c', { freeSlots: 1 })]
  const s = standings({ a: { score: 1 }, b: { score: 0.75 }, c: { score: 0.95 } })
  t.is(pickWorker(ws, ['echo'], new Set(), use({}), NOW, s)?.nodeId, 'a')
  // Without standing, free slots decide as before.
  t.is(pickWorker(ws, ['echo'], new Set(), use({}), NOW)?.nodeId, 'b')
  // a and c (within 0.1) take turns while they have room; b only once they are full.
  t.is(pickWorker(ws, ['echo'], new Set(), use({ a: { lastAssignedMs: NOW - 1 } }), NOW, s)?.nodeId, 'c')
  t.is(pickWorker(ws, ['echo'], new Set(), use({ a: { inFlight: 1 }, c: { inFlight: 1 } }), NOW, s)?.nodeId, 'b')
})

test('near-equal standing takes turns: one failure among many successes, acks within the jitter floor', (t) => {
  const rep = new Reputation()
  for (let i = 0; i < 30; i++) {
    rep.record('a', 'success', { ackLatencyMs: 20, now: NOW })
    rep.record('b', 'success', { ackLatencyMs: 90, now: NOW })
  }
  rep.record('b', 'failure', { now: NOW })
  const ws = [worker('a'), worker('b'), worker('fresh')]
  t.deepEqual(picks(ws, use({}), 6, (id) => rep.standing(id)), ['a', 'b', 'fresh', 'a', 'b', 'fresh'])
})

test('a clearly slower ack is picked later: each doubling over the fastest (at least 100 ms) is a band', (t) => {
  const ws = [worker('a'), worker('b'), worker('c')]
  // 150 ms is under twice the 100 ms floor: the same band as 20 ms; 450 ms is two bands down.
  const s = standings({ a: { ackLatencyMs: 20 }, b: { ackLatencyMs: 150 }, c: { ackLatencyMs: 450 } })
  t.deepEqual(picks(ws, use({}), 4, s), ['a', 'b', 'a', 'b'])
  // With everyone slow, the ratio counts, not the absolute value.
  const slow = standings({ a: { ackLatencyMs: 2_000 }, b: { ackLatencyMs: 3_000 }, c: { ackLatencyMs: 9_000 } })
  t.deepEqual(picks(ws, use({}), 4, slow), ['a', 'b', 'a', 'b'])
})

test('standing never sends a job to a full worker when another has room; with none free, the shortest queue first', (t) => {
  const ws = [worker('good', { freeSlots: 1 }), worker('poor', { freeSlots: 1 })]
  const s = standings({ good: { score: 1 }, poor: { score: 0.5 } })
  t.is(pickWorker(ws, ['echo'], new Set(), use({ good: { inFlight: 1 } }), NOW, s)?.nodeId, 'poor')
  t.is(pickWorker(ws, ['echo'], new Set(), use({ good: { inFlight: 3 }, poor: { inFlight: 2 } }), NOW, s)?.nodeId, 'poor')
  t.is(pickWorker(ws, ['echo'], new Set(), use({ good: { inFlight: 2 }, poor: { inFlight: 2 } }), NOW, s)?.nodeId, 'good')
})

test('one slow ack or one failure costs turns, not all of them: a worker ranked down is tried again', (t) => {
  const rep = new Reputation()
  rep.record('a', 'success', { ackLatencyMs: 20, now: NOW })
  rep.record('slow', 'success', { ackLatencyMs: 5_000, now: NOW })
  rep.record('failed', 'failure', { now: NOW })
  const ws = [worker('a'), worker('slow'), worker('failed')]
  const u = use({})
  const given = new Map<string, number[]>()
  // One job a second for ten minutes of the scheduler's clock; a always has room.
  for (let s = 0; s < 600; s++) {
    const now = NOW + s * 1000
    const w = pickWorker(ws, ['echo'], new Set(), u, now, (id) => rep.standing(id))!
    given.set(w.nodeId, [...(given.get(w.nodeId) ?? []), s])
    u.set(w.nodeId, { inFlight: 0, lastAssignedMs: now, misses: 0, coolUntilMs: 0 })
  }
  const a = given.get('a') ?? []
  const slow = given.get('slow') ?? []
  const failed = given.get('failed') ?? []
  t.true(a.length > 500, `a got ${a.length} of 600`)
  t.true(slow.length >= 2, `the slow one got ${slow.length}`)
  t.true(failed.length >= 2, `the failed one got ${failed.length}`)
  // Not at once (they are ranked down), but within five minutes of the last outcome recorded.
  t.true(slow[0]! > 0 && slow[0]! <= 300)
  t.true(failed[0]! > 0 && failed[0]! <= 300)
})

test('a worker whose record is old (e.g. from before a restart) is tried again at once, then ranked by it again', (t) => {
  const ws = [worker('a'), worker('b')]
  const s = standings({ a: { score: 1 }, b: { score: 0.6, ackLatencyMs: 3_000, updatedAtMs: NOW - 3_600_000 } })
  // Its clock restarts with the assignment, so until its outcome is recorded it is in its band again.
  t.deepEqual(picks(ws, use({}), 4, s), ['a', 'b', 'a', 'a'])
  t.is(new Reputation().standing('never-seen'), undefined)
})

test('a placed job goes to the slot-th capable worker in rendezvous order of its key, whatever the load, on every scheduler', (t) => {
  const ws = [worker('a'), worker('b', { freeSlots: 0 }), worker('c'), worker('d', { containers: ['other'] })]
  const order = rendezvousOrder('client-key-1', ['a', 'b', 'c'])
  t.is(placeWorker(ws, ['echo'], new Set(), { key: 'client-key-1', slot: 0 })?.nodeId, order[0])
  t.is(placeWorker(ws, ['echo'], new Set(), { key: 'client-key-1', slot: 1 })?.nodeId, order[1])
  t.is(placeWorker(ws, ['echo'], new Set(), { key: 'client-key-1', slot: 4 })?.nodeId, order[1], 'slots wrap around')
  // Another scheduler's view lists the same workers in another order: the same choice.
  t.is(placeWorker([...ws].reverse(), ['echo'], new Set(), { key: 'client-key-1', slot: 0 })?.nodeId, order[0])
  // Excluded workers (answered this interval already) are skipped; the rest keep their order.
  t.is(placeWorker(ws, ['echo'], new Set([order[0]!]), { key: 'client-key-1', slot: 0 })?.nodeId, order[1])
  t.is(placeWorker(ws, ['other', 'echo'], new Set(), { key: 'k', slot: 0 }), undefined, 'nobody serves the chain')
  // Removing one worker moves only the keys it held.
  let moved = 0
  for (let i = 0; i < 200; i++) {
    const before = rendezvousOrder(`k${i}`, ['a', 'b', 'c'])[0]
    const after = rendezvousOrder(`k${i}`, ['a', 'c'])[0]
    if (before !== 'b' && before !== after) moved += 1
  }
  t.is(moved, 0)
})
