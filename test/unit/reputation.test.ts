import test from 'ava'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { levelStore } from '../../src/store/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { EXCLUSION_BASE_MS, Reputation, SCORE_MIN_OUTCOMES, SCORE_THRESHOLD, exclusionMs, score } from '../../src/scheduler/reputation.ts'

test('a lost dispute excludes at once; repeats double the exclusion', (t) => {
  const rep = new Reputation()
  const now = 1_000_000
  for (let i = 0; i < 50; i++) rep.record('w', 'success', { now })
  t.false(rep.excluded('w', now))
  const first = rep.record('w', 'dispute', { now })
  t.is(first.excludedUntilMs, now + EXCLUSION_BASE_MS)
  t.true(rep.excluded('w', now + EXCLUSION_BASE_MS - 1))
  t.false(rep.excluded('w', now + EXCLUSION_BASE_MS))
  // A dispute during an exclusion does not stack; the next one after it doubles.
  rep.record('w', 'dispute', { now: now + 1 })
  t.is(rep.get('w').excludedUntilMs, now + EXCLUSION_BASE_MS)
  const later = now + EXCLUSION_BASE_MS + 1
  t.is(rep.record('w', 'dispute', { now: later }).excludedUntilMs, later + 2 * EXCLUSION_BASE_MS)
  t.is(exclusionMs(3), 4 * EXCLUSION_BASE_MS)
  t.is(rep.get('w').disputesLost, 3)
})

test('the score weighs timeouts and disputes more than failures; a low score excludes too', (t) => {
  const rep = new Reputation()
  t.is(rep.score('never-seen'), 1)
  rep.record('slow', 'success', { now: 1 })
  rep.record('slow', 'timeout', { now: 2 })
  t.true(rep.score('slow') < 1)
  t.false(rep.excluded('slow', 3), 'one timeout after a success is not enough')
  rep.record('slow', 'timeout', { now: 4 })
  t.true(rep.score('slow') < SCORE_THRESHOLD)
  t.false(rep.excluded('slow', 5), `a low score excludes only after ${SCORE_MIN_OUTCOMES} outcomes: a few missed acks are the ack cool-down's business`)
  for (let i = 3; i < SCORE_MIN_OUTCOMES; i++) rep.record('slow', i % 2 === 0 ? 'success' : 'timeout', { now: 5 + i })
  t.true(rep.score('slow') < SCORE_THRESHOLD)
  t.true(rep.excluded('slow', 20))
  // A new worker whose first ack went missing on a busy machine keeps its turns.
  rep.record('new', 'timeout', { now: 1 })
  t.false(rep.excluded('new', 2))
  t.true(score({ successes: 10, failures: 1, timeouts: 0, refusals: 0, disputesLost: 0, ackLatencyMs: 0, excludedUntilMs: 0, exclusions: 0, updatedAtMs: 0 }) >
    score({ successes: 10, failures: 0, timeouts: 0, refusals: 0, disputesLost: 1, ackLatencyMs: 0, excludedUntilMs: 0, exclusions: 0, updatedAtMs: 0 }))
})

test('records survive a restart through the LevelDB store; a damaged one is dropped', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-rep-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const open = async () => {
    const store = levelStore({ path: dir, maxResults: 10 })({ logger: silentLogger() })
    await store.start()
    return store
  }
  const store = await open()
  const rep = new Reputation(store)
  await rep.load()
  rep.record('cheat', 'dispute', { ackLatencyMs: 12 })
  rep.record('honest', 'success')
  await rep.flushed()
  await store.saveReputation('broken', '{"successes": "many"}')
  await store.stop()

  const again = await open()
  t.teardown(async () => { await again.stop() })
  const restored = new Reputation(again)
  await restored.load()
  t.is(restored.get('cheat').disputesLost, 1)
  t.is(restored.get('cheat').ackLatencyMs, 12)
  t.true(restored.excluded('cheat'))
  t.is(restored.get('honest').successes, 1)
  t.deepEqual(restored.all().map(([id]) => id).sort(), ['cheat', 'honest'])
})

test('a lost dispute about a result counted as a success takes that success back', (t) => {
  const rep = new Reputation()
  rep.record('w', 'success', { now: 1 })
  rep.record('w', 'success', { now: 2 })
  const r = rep.record('w', 'dispute', { now: 3, retractSuccess: true })
  t.is(r.successes, 1)
  t.is(r.disputesLost, 1)
  t.true(rep.excluded('w', 4))
  // Another scheduler's dispute is about a result this one never counted.
  t.is(rep.record('w', 'dispute', { now: 5 }).successes, 1)
})
