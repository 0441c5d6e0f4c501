import test from 'ava'
import { planEviction } from '../../src/images/index.ts'
import type { ImageRecordEntry } from '../../src/images/index.ts'

const id = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`
const entry = (n: number, sizeBytes: number, lastUsedMs: number): ImageRecordEntry =>
  ({ id: id(n), ref: `r/${n}:1`, source: 'tar', sizeBytes, fetchedAtMs: 0, lastUsedMs })
const none = new Set<string>()

test('least recently used go first, only until the unused rest fits the budget', (t) => {
  const records = [entry(1, 100, 30), entry(2, 100, 10), entry(3, 100, 20)]
  t.deepEqual(planEviction({ records, pinned: none, inUse: none, budgetBytes: 150 }),
    { evict: [id(2), id(3)], unusedBytes: 300, remainingBytes: 100 })
  t.deepEqual(planEviction({ records, pinned: none, inUse: none, budgetBytes: 200 }).evict, [id(2)])
  t.deepEqual(planEviction({ records, pinned: none, inUse: none, budgetBytes: 0 }).evict, [id(2), id(3), id(1)])
})

test('within the budget nothing is evicted (the budget is inclusive)', (t) => {
  const records = [entry(1, 100, 1), entry(2, 50, 2)]
  t.deepEqual(planEviction({ records, pinned: none, inUse: none, budgetBytes: 150 }), { evict: [], unusedBytes: 150, remainingBytes: 150 })
})

test('configured (pinned) and in-use images are never chosen and do not count against the budget', (t) => {
  const records = [entry(1, 1000, 1), entry(2, 1000, 2), entry(3, 10, 3)]
  const plan = planEviction({ records, pinned: new Set([id(1)]), inUse: new Set([id(2)]), budgetBytes: 0 })
  t.deepEqual(plan, { evict: [id(3)], unusedBytes: 10, remainingBytes: 0 })
})

test('ties in last use are broken by id, so the plan does not depend on record order', (t) => {
  const a = planEviction({ records: [entry(2, 10, 5), entry(1, 10, 5)], pinned: none, inUse: none, budgetBytes: 10 })
  const b = planEviction({ records: [entry(1, 10, 5), entry(2, 10, 5)], pinned: none, inUse: none, budgetBytes: 10 })
  t.deepEqual(a.evict, [id(1)])
  t.deepEqual(b.evict, [id(1)])
})

test('no records, no plan; a negative recorded size counts as 0', (t) => {
  t.deepEqual(planEviction({ records: [], pinned: none, inUse: none, budgetBytes: 0 }), { evict: [], unusedBytes: 0, remainingBytes: 0 })
  t.deepEqual(planEviction({ records: [entry(1, -5, 1), entry(2, 20, 2)], pinned: none, inUse: none, budgetBytes: 10 }).evict, [id(1), id(2)])
})
