import test from 'ava'
import type { Heartbeat } from '../../src/protocol/index.ts'
import { coolDown, pickWorker, type WorkerUse } from '../../src/scheduler/index.ts'

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
