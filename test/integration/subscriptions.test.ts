import test, { type ExecutionContext } from 'ava'
import { randomBytes } from 'node:crypto'
import { status as grpcStatus } from '@grpc/grpc-js'
import { inframindClient, openSubscriptionOutput, signSubscriptionCancel, signSubscriptionRequest, type SubscriptionResponse } from '../../src/client/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import { containerYaml, eventually, meshAddr, startFor as start, type TestNode } from '../helpers/node.ts'

// Subscriptions on real in-process nodes (two scheduler+gateways, two workers; LevelDB, Docker,
// gRPC on port 0, libp2p on 127.0.0.1): delegated requests through either gateway, cancels by the
// owner and by others, deliveries stopping after a cancel.

async function mesh (t: ExecutionContext): Promise<{ gateways: TestNode[], workers: TestNode[] }> {
  const gw1 = await start(t, { mesh: {}, node: { roles: ['scheduler', 'gateway'] }, containers: [containerYaml('echo')] })
  const gw2 = await start(t, { mesh: { bootstrap: [meshAddr(gw1)] }, node: { roles: ['scheduler', 'gateway'] }, containers: [containerYaml('echo')] })
  const workers = [
    await start(t, { mesh: { bootstrap: [meshAddr(gw1)] }, node: { roles: ['worker'] } }),
    await start(t, { mesh: { bootstrap: [meshAddr(gw1)] }, node: { roles: ['worker'] } })
  ]
  for (const g of [gw1, gw2]) {
    await eventually(() => workers.every((w) => g.node.mesh?.livePeer(w.node.identity.nodeId) != null) && [gw1, gw2].every((o) => o === g || g.node.mesh?.livePeer(o.node.identity.nodeId) != null), 60_000)
  }
  return { gateways: [gw1, gw2], workers }
}

const PERIOD_S = 3

const codeOf = (err: unknown): number | undefined => (err as { code?: number }).code

test.serial('delegated: one signed request through either gateway is one subscription; expired and tampered requests are refused', async (t) => {
  const { gateways } = await mesh(t)
  const owner = identityFromSeed(randomBytes(32))
  const spec = { containers: ['echo'], input: 'hi', frequency: 2, period: 60, redundancy: 1, nonce: 'delegated-1' }
  const signed = signSubscriptionRequest(owner, spec)
  const a = inframindClient({ gateways: [gateways[0]!.node.api.publicAddress()] })
  const b = inframindClient({ gateways: [gateways[1]!.node.api.publicAddress()] })
  t.teardown(() => { a.close(); b.close() })
  const first = await a.createSignedSubscription(signed)
  const replayed = await b.createSignedSubscription(signed)
  t.is(replayed.subscription!.id, first.subscription!.id, 'the same (owner, nonce) through another gateway is the same subscription')
  t.is(first.subscription!.owner, owner.nodeId)
  // Both gateways list it once.
  await eventually(async () => (await b.listSubscriptions({ owner: owner.nodeId })).length === 1)
  t.is((await a.listSubscriptions({ owner: owner.nodeId })).length, 1)

  const expiresAt = Math.floor(Date.now() / 1000) - 3600
  const expired = signSubscriptionRequest(owner, { ...spec, nonce: 'delegated-2', expiresAt })
  const refusal = await t.throwsAsync(a.createSignedSubscription(expired))
  t.is(codeOf(refusal), grpcStatus.FAILED_PRECONDITION === codeOf(refusal) ? grpcStatus.FAILED_PRECONDITION : grpcStatus.INVALID_ARGUMENT)
  t.regex(refusal!.message, /expire/i)
  t.true(refusal!.message.includes(String(expiresAt)), 'the refusal names the expiry')

  // A request whose signature is not the key it names: refused.
  const tampered = { ...signed, payload: new Uint8Array(signed.payload) }
  tampered.payload[tampered.payload.length - 1] ^= 1
  t.is(codeOf(await t.throwsAsync(a.createSignedSubscription(tampered))), grpcStatus.INVALID_ARGUMENT)
})

test.serial('a cancel by anyone but the owner is PERMISSION_DENIED; the owner\'s stops deliveries from the next interval', async (t) => {
  const { gateways, workers } = await mesh(t)
  const owner = identityFromSeed(randomBytes(32))
  const stranger = identityFromSeed(randomBytes(32))
  const client = inframindClient({ gateways: gateways.map((g) => g.node.api.publicAddress()) })
  t.teardown(() => { client.close() })
  const created = await client.createSubscription(owner, { containers: ['echo'], input: 'beat', frequency: 50, period: PERIOD_S, redundancy: 2, nonce: 'cancel-1' })
  const t0 = Date.now()
  const id = created.subscription!.id
  const seen: SubscriptionResponse[] = []
  const watching = (async () => {
    for await (const r of client.watchSubscription(id, 1, { timeoutMs: 120_000 })) seen.push(r)
  })()
  await eventually(() => seen.some((r) => r.interval >= 2) ? true : undefined, 60_000)
  t.log(`interval 2 answered ${Date.now() - t0} ms after creation`)
  const denied = await t.throwsAsync(client.cancelSubscription(stranger, id))
  t.is(codeOf(denied), grpcStatus.PERMISSION_DENIED)
  t.is((await client.getSubscription(id)).state, 'active')

  const cancelled = await client.cancelSubscription(owner, id)
  t.is(cancelled.state, 'cancelled')
  const cancelledAt = Number(cancelled.subscription!.cancelledAt)
  const activeAt = Number(cancelled.subscription!.activeAt)
  const cancelInterval = Math.floor((cancelledAt - activeAt) / PERIOD_S) + 1
  await watching
  // Wait two more periods: nothing arrives for later intervals, on either gateway.
  await new Promise((resolve) => setTimeout(resolve, 2 * PERIOD_S * 1000 + 500))
  for (const g of gateways) {
    const status = await inframindClient({ gateways: [g.node.api.publicAddress()] }).getSubscription(id)
    t.is(status.state, 'cancelled')
    t.true(status.responses.every((r) => r.interval <= cancelInterval), `no response after interval ${cancelInterval}`)
  }
  t.true(seen.every((r) => r.interval <= cancelInterval))
  for (const r of seen) t.is(new TextDecoder().decode(openSubscriptionOutput(owner, r)), 'beat')
  const workerIds = workers.map((w) => w.node.identity.nodeId)
  t.true(seen.every((r) => workerIds.includes(r.nodeId)))
  // A second cancel by the owner changes nothing and is not an error.
  t.is((await client.cancelSubscription(owner, id)).state, 'cancelled')
  void signSubscriptionCancel
})
