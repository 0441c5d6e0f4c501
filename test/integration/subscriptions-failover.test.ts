import test from 'ava'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { startDevnet, type Devnet } from '../../src/cli/devnet.ts'
import { inframindClient, openSubscriptionOutput, type SubscriptionResponse } from '../../src/client/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import { decodeEnvelope } from '../../src/envelope/index.ts'
import { verifyReceipt } from '../../src/receipt/index.ts'

// A recurring subscription on a 5-node devnet of real processes (2 scheduler+gateways, 2 workers, a
// validator that is also the archive): every interval gets exactly `redundancy` responses from
// distinct nodes, and when the scheduler that owns the subscription is killed with SIGKILL, the
// other one takes it over and the following intervals still get exactly that many.

const PERIOD_S = 5
const FREQUENCY = 6
const REDUNDANCY = 2

let net: Devnet | undefined
let dir = ''

test.after.always(async () => {
  await net?.stop()
  if (dir !== '' && process.env.KEEP_DEVNET === undefined) await rm(dir, { recursive: true, force: true })
})

test('a recurring subscription keeps exactly its redundancy per interval through the owner\'s SIGKILL', async (t) => {
  t.timeout(300_000)
  dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-subs-'))
  net = await startDevnet({ nodes: 5, validators: 1, gateways: 2, archives: 1, baseDir: dir, warmOnFirstWorker: false, logLevel: process.env.DEVNET_LOG ?? 'warn', progress: () => {} })
  const gateways = net.nodes.filter((n) => n.roles.includes('gateway'))
  const workers = net.nodes.filter((n) => n.roles.includes('worker')).map((n) => n.nodeId)
  t.is(gateways.length, 2)
  t.is(workers.length, 2)
  const client = inframindClient({ gateways: gateways.map((g) => g.publicAddr) })
  t.teardown(() => { client.close() })
  const owner = identityFromSeed(randomBytes(32))

  const created = await client.createSubscription(owner, {
    containers: ['echo'], input: new TextEncoder().encode('tick'), frequency: FREQUENCY, period: PERIOD_S, redundancy: REDUNDANCY, nonce: 'failover-1'
  })
  const id = created.subscription!.id
  // The same signed terms again (another nonce would be another subscription) name the same one.
  const again = await client.createSubscription(owner, {
    containers: ['echo'], input: new TextEncoder().encode('tick'), frequency: FREQUENCY, period: PERIOD_S, redundancy: REDUNDANCY, nonce: 'failover-1'
  })
  t.is(again.subscription!.id, id)

  const byInterval = new Map<number, SubscriptionResponse[]>()
  let killedAfter = 0
  for await (const r of client.watchSubscription(id, 1, { timeoutMs: 240_000 })) {
    const list = byInterval.get(r.interval) ?? []
    list.push(r)
    byInterval.set(r.interval, list)
    t.is(new TextDecoder().decode(openSubscriptionOutput(owner, r)), 'tick', 'the owner opens its output')
    // Once interval 2 is complete, the scheduler that owns the subscription dies.
    if (killedAfter === 0 && r.interval >= 2 && list.length === REDUNDANCY) {
      const status = await client.getSubscription(id)
      const victim = gateways.find((g) => g.nodeId === status.ownerScheduler)
      t.truthy(victim, `the owner ${status.ownerScheduler} is one of the gateways`)
      victim!.child.kill('SIGKILL')
      killedAfter = r.interval
    }
  }
  t.log(`killed after interval ${killedAfter}; responses per interval: ${[...byInterval].map(([i, l]) => `${i}:${l.length}`).join(' ')}`)
  t.true(killedAfter > 0, 'the owner was killed mid-run')
  const final = await client.getSubscription(id)
  t.is(final.state, 'completed')
  for (const [interval, list] of byInterval) {
    t.true(list.length <= REDUNDANCY, `interval ${interval}: ${list.length} responses`)
    t.is(new Set(list.map((r) => r.nodeId)).size, list.length, `interval ${interval}: each from a distinct node`)
    t.true(list.every((r) => workers.includes(r.nodeId)), 'only workers answer')
  }
  // The interval during which the owner died may fall short; every one after it is complete.
  for (let i = killedAfter + 2; i <= FREQUENCY; i++) t.is(byInterval.get(i)?.length, REDUNDANCY, `interval ${i} after the takeover`)
  for (let i = 1; i <= killedAfter; i++) t.is(byInterval.get(i)?.length, REDUNDANCY, `interval ${i} before the kill`)

  // The archive (the validator) holds the worker's receipt of a delivered response, checked before it is served.
  const keeper = net.nodes.find((n) => n.roles.includes('archive'))!
  const records = inframindClient({ gateways: [keeper.publicAddr] })
  t.teardown(() => { records.close() })
  const last = byInterval.get(FREQUENCY)![0]!
  const reply = await eventuallyAsync(async () => await records.getReceipt({ jobId: last.jobId }).catch(() => undefined))
  const env = decodeEnvelope(reply.record!.data)
  const verdict = verifyReceipt(env)
  t.true(verdict.valid)
  if (verdict.valid) {
    t.is(verdict.receipt.jobId, last.jobId)
    t.is(verdict.receipt.workerId, last.nodeId)
    t.deepEqual(verdict.receipt.outputHash, last.outputHash)
  }
})

async function eventuallyAsync<T> (fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > until) throw new Error('not found in time')
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}
