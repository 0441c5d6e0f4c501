import test, { type ExecutionContext } from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import { defaultConfig } from '../../src/config/index.ts'
import type { MeshConfig, Role } from '../../src/config/types.ts'
import { encodeEnvelope, signEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import { mesh, type Ignored, type Mesh, type MeshMessage, type Rejection } from '../../src/mesh/index.ts'
import { sha256 } from '../../src/receipt/index.ts'
import {
  containerKey, encodeAttestation, encodeHeartbeat, PAYLOAD_TYPES, roleKey, TOPICS, type Attestation, type Heartbeat
} from '../../src/protocol/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { multiaddr } from '@multiformats/multiaddr'

// Real libp2p nodes over TCP on 127.0.0.1: discovery, heartbeats, validation, fetch, restart.

interface Started { mesh: Mesh, identity: Identity, content: Map<string, Uint8Array> }

function meshConfig (overrides: Partial<MeshConfig> = {}): MeshConfig {
  return { ...defaultConfig().mesh, listen: ['/ip4/127.0.0.1/tcp/0'], heartbeatIntervalMs: 1000, provideIntervalMs: 60_000, ...overrides }
}

async function startMesh (t: ExecutionContext, opts: { roles?: Role[], containers?: string[], bootstrap?: string[], identity?: Identity, config?: Partial<MeshConfig> } = {}): Promise<Started> {
  const identity = opts.identity ?? identityFromSeed(randomBytes(32))
  const content = new Map<string, Uint8Array>()
  const m = mesh({ config: meshConfig({ bootstrap: opts.bootstrap ?? [], ...opts.config }), roles: opts.roles ?? ['worker'], containers: opts.containers ?? ['echo'] })({
    identity,
    logger: silentLogger(),
    heartbeat: () => ({ cpuCores: 2, memoryBytes: 1 << 30, gpus: 0, grpcAddress: '', freeSlots: 2, stats: null, rosterVersion: 0 }),
    content: async (hash) => content.get(Buffer.from(hash).toString('hex'))
  })
  await m.start()
  t.teardown(async () => await m.stop())
  return { mesh: m, identity, content }
}

function bootAddr (s: Started): string {
  return s.mesh.addresses().find((a) => a.includes('/tcp/') && a.includes('/p2p/')) ?? `${s.mesh.addresses()[0]}/p2p/${s.mesh.nodeId}`
}

async function eventually<T> (fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

test('a node joining through one bootstrap peer finds the scheduler through the DHT within seconds', async (t) => {
  const boot = await startMesh(t)
  const scheduler = await startMesh(t, { roles: ['scheduler', 'gateway'], containers: [], bootstrap: [bootAddr(boot)] })
  const worker = await startMesh(t, { roles: ['worker'], containers: ['echo', 'sentiment'], bootstrap: [bootAddr(boot)] })
  const newcomer = await startMesh(t, { bootstrap: [bootAddr(boot)] })
  const started = Date.now()
  const found = await eventually(async () => {
    const ids = await newcomer.mesh.findProviders(roleKey('scheduler'), { signal: AbortSignal.timeout(3000) }).catch((): string[] => [])
    return ids.includes(scheduler.mesh.nodeId) ? ids : undefined
  })
  t.true(found.includes(scheduler.mesh.nodeId))
  t.false(found.includes(worker.mesh.nodeId))
  t.log(`scheduler found after ${Date.now() - started} ms`)
  const byContainer = await eventually(async () => {
    const ids = await newcomer.mesh.findProviders(containerKey('sentiment'), { signal: AbortSignal.timeout(3000) }).catch((): string[] => [])
    return ids.includes(worker.mesh.nodeId) ? ids : undefined
  })
  t.true(byContainer.includes(worker.mesh.nodeId))
})

test('heartbeats carry roles and containers and show up in the peer table with latency', async (t) => {
  const a = await startMesh(t, { roles: ['scheduler'], containers: [] })
  const b = await startMesh(t, { bootstrap: [bootAddr(a)], containers: ['echo'] })
  const seen = await eventually(() => b.mesh.peers().find((p) => p.nodeId === a.mesh.nodeId && p.alive))
  t.deepEqual(seen.roles, ['scheduler'])
  t.true(seen.connected)
  t.true(seen.addresses.length > 0)
  const fromA = await eventually(() => a.mesh.livePeer(b.mesh.nodeId) ?? undefined)
  t.deepEqual(fromA.containers, ['echo'])
  t.is(fromA.stats, null)
})

function heartbeatBytes (nodeId: string, atMs = Date.now()): Uint8Array {
  return encodeHeartbeat({
    nodeId, atMs, roles: ['worker'], containers: [], cpuCores: 1, memoryBytes: 1, gpus: 0, grpcAddress: '', freeSlots: 0, stats: null, intervalMs: 1000, rosterVersion: 0
  })
}

/** Waits until `from`'s heartbeats reach `to`, so gossip flows between the two. */
async function linked (to: Started, from: Started): Promise<void> {
  await eventually(() => to.mesh.livePeer(from.mesh.nodeId) ?? undefined)
}

/** Invalid messages `victim`'s gossipsub holds against `peer` on one topic (decaying; 0 when none ever). */
function invalidDeliveries (victim: Started, peer: Started, topic: string): number {
  const stats = victim.mesh.libp2p().services.pubsub.dumpPeerScoreStats()[peer.mesh.nodeId]
  return stats?.topics[topic]?.invalidMessageDeliveries ?? 0
}

test('forged, wrong-type, oversized and garbage gossip is rejected while valid messages still flow', async (t) => {
  const victim = await startMesh(t, { config: { maxGossipBytes: 2048 } })
  const attacker = await startMesh(t, { bootstrap: [bootAddr(victim)] })
  const honest = await startMesh(t, { bootstrap: [bootAddr(victim)] })
  const rejections: Rejection[] = []
  victim.mesh.onRejected((r) => rejections.push(r))
  const heartbeats: Array<MeshMessage<Heartbeat>> = []
  victim.mesh.subscribe('heartbeats', (m) => heartbeats.push(m))
  // Wait until gossip flows between attacker and victim.
  await eventually(() => heartbeats.some((m) => m.from === attacker.mesh.nodeId))

  const pubsub = attacker.mesh.libp2p().services.pubsub
  const stranger = identityFromSeed(randomBytes(32))
  const sends: Array<[string, Uint8Array]> = [
    // A heartbeat signed by another key than the publisher's.
    ['SIGNER_MISMATCH', encodeEnvelope(signEnvelope(stranger, PAYLOAD_TYPES.heartbeat, heartbeatBytes(stranger.nodeId)))],
    // A valid signature over the wrong payload type for this topic.
    ['WRONG_PAYLOAD_TYPE', encodeEnvelope(signEnvelope(attacker.identity, PAYLOAD_TYPES.ack, heartbeatBytes(attacker.identity.nodeId)))],
    // Bigger than max_gossip_bytes.
    ['OVERSIZED', new Uint8Array(4096).fill(7)],
    // Not an envelope at all.
    ['MALFORMED_ENVELOPE', randomBytes(200)]
  ]
  // A correctly signed envelope whose signature bytes were then changed.
  const tampered = signEnvelope(attacker.identity, PAYLOAD_TYPES.heartbeat, heartbeatBytes(attacker.identity.nodeId))
  tampered.signature[10] ^= 0xff
  sends.push(['BAD_SIGNATURE', encodeEnvelope(tampered)])
  for (const [, data] of sends) await pubsub.publish(TOPICS.heartbeats, data).catch(() => {})

  await eventually(() => rejections.length >= sends.length ? true : undefined).catch(() => {
    t.log('rejections seen:', rejections.map((r) => `${r.code}: ${r.reason}`))
  })
  t.deepEqual(rejections.map((r) => r.code).sort(), sends.map(([code]) => code).sort())
  t.true(rejections.every((r) => r.from === attacker.mesh.nodeId && r.topic === TOPICS.heartbeats))
  t.is(victim.mesh.rejections()[`${TOPICS.heartbeats}:OVERSIZED`], 1)
  t.false(heartbeats.some((m) => m.from === stranger.nodeId), 'the forged heartbeat was never delivered')
  // Gossipsub holds them against the attacker (the counter decays, so only its sign is certain).
  t.true(invalidDeliveries(victim, attacker, TOPICS.heartbeats) > 0)
  // The victim keeps working: heartbeats from the honest peer still arrive after the attack.
  const since = Date.now()
  await eventually(() => heartbeats.some((m) => m.from === honest.mesh.nodeId && m.value.atMs > since) ? true : undefined)
  t.pass()
})

test('a valid attestation published by one node is delivered to and accepted by another', async (t) => {
  const validator = await startMesh(t, { roles: ['validator'], containers: [] })
  const observer = await startMesh(t, { bootstrap: [bootAddr(validator)] })
  await linked(observer, validator)
  const received: Array<MeshMessage<Attestation>> = []
  observer.mesh.subscribe('attestations', (m) => received.push(m))
  const receiptHash = sha256(randomBytes(64))
  // Published until one arrives: the topic's mesh may still be forming, and a message published
  // to no peer is not an error.
  await eventually(async () => {
    await validator.mesh.publish('attestations', {
      receiptHash, jobId: 'job-1', workerId: observer.mesh.nodeId, validatorId: validator.mesh.nodeId,
      verdict: 'agree', method: 'signature', outputHash: new Uint8Array(0), reason: '', atMs: Date.now()
    })
    await new Promise((resolve) => setTimeout(resolve, 200))
    return received.length > 0 ? true : undefined
  })
  const got = received[0]!
  t.is(got.from, validator.mesh.nodeId)
  t.is(got.topic, TOPICS.attestations)
  t.deepEqual(Buffer.from(got.value.receiptHash), Buffer.from(receiptHash))
  t.is(got.value.verdict, 'agree')
  const notAccepted = [...Object.keys(observer.mesh.rejections()), ...Object.keys(observer.mesh.ignored())]
  t.false(notAccepted.some((k) => k.startsWith(`${TOPICS.attestations}:`)), notAccepted.join(', '))
  t.is(invalidDeliveries(observer, validator, TOPICS.attestations), 0)
})

test('stale and future-stamped messages are ignored without scoring their sender down; invalid ones are not', async (t) => {
  const victim = await startMesh(t)
  const skewed = await startMesh(t, { bootstrap: [bootAddr(victim)] })
  const forger = await startMesh(t, { bootstrap: [bootAddr(victim)] })
  await linked(victim, skewed)
  await linked(victim, forger)
  const ignored: Ignored[] = []
  victim.mesh.onIgnored((i) => ignored.push(i))
  const rejections: Rejection[] = []
  victim.mesh.onRejected((r) => rejections.push(r))

  // An honest node whose clock is an hour off: its heartbeats and attestations are signed and well formed.
  const pubsub = skewed.mesh.libp2p().services.pubsub
  const me = skewed.identity
  const hour = 3_600_000
  const attestation = (atMs: number): Uint8Array => encodeEnvelope(signEnvelope(me, PAYLOAD_TYPES.attestation, encodeAttestation({
    receiptHash: sha256(randomBytes(8)), jobId: 'job-1', workerId: victim.mesh.nodeId, validatorId: me.nodeId,
    verdict: 'agree', method: 'signature', outputHash: new Uint8Array(0), reason: '', atMs
  })))
  const sends: Array<[string, string, Uint8Array]> = [
    [TOPICS.heartbeats, 'STALE', encodeEnvelope(signEnvelope(me, PAYLOAD_TYPES.heartbeat, heartbeatBytes(me.nodeId, Date.now() - hour)))],
    [TOPICS.heartbeats, 'FUTURE', encodeEnvelope(signEnvelope(me, PAYLOAD_TYPES.heartbeat, heartbeatBytes(me.nodeId, Date.now() + hour)))],
    [TOPICS.attestations, 'STALE', attestation(Date.now() - hour)],
    [TOPICS.attestations, 'FUTURE', attestation(Date.now() + hour)]
  ]
  for (const [topic, , data] of sends) await pubsub.publish(topic, data).catch(() => {})
  // The same number of garbage messages from another peer, as the control: those must cost it.
  for (const [topic] of sends) await forger.mesh.libp2p().services.pubsub.publish(topic, randomBytes(200)).catch(() => {})

  await eventually(() => ignored.length >= sends.length && rejections.length >= sends.length ? true : undefined).catch(() => {
    t.log('ignored:', ignored.map((i) => `${i.topic} ${i.code}`), 'rejected:', rejections.map((r) => `${r.topic} ${r.code}`))
  })
  t.deepEqual(ignored.map((i) => `${i.topic} ${i.code}`).sort(), sends.map(([topic, code]) => `${topic} ${code}`).sort())
  t.true(ignored.every((i) => i.from === skewed.mesh.nodeId))
  t.is(victim.mesh.ignored()[`${TOPICS.heartbeats}:STALE`], 1)
  t.is(victim.mesh.ignored()[`${TOPICS.attestations}:FUTURE`], 1)
  t.true(rejections.every((r) => r.from === forger.mesh.nodeId), 'nothing from the skewed node counts as rejected')
  t.is(Object.keys(victim.mesh.rejections()).filter((k) => k.endsWith(':STALE') || k.endsWith(':FUTURE')).length, 0)

  // Gossipsub held nothing against the skewed node, and everything against the forger.
  t.is(invalidDeliveries(victim, skewed, TOPICS.heartbeats) + invalidDeliveries(victim, skewed, TOPICS.attestations), 0)
  t.true(invalidDeliveries(victim, forger, TOPICS.heartbeats) > 0 && invalidDeliveries(victim, forger, TOPICS.attestations) > 0)
  const score = victim.mesh.libp2p().services.pubsub.getScore.bind(victim.mesh.libp2p().services.pubsub)
  const forgerScore = await eventually(() => score(forger.mesh.nodeId) < 0 ? score(forger.mesh.nodeId) : undefined)
  t.true(forgerScore < 0)
  t.true(score(skewed.mesh.nodeId) >= 0, `skewed node scored ${score(skewed.mesh.nodeId)}`)
  // Its heartbeats with a right stamp are still accepted.
  const since = Date.now()
  await eventually(() => (victim.mesh.livePeer(skewed.mesh.nodeId)?.atMs ?? 0) > since ? true : undefined)
  t.pass()
})

test('fetch returns content by sha256 and refuses what the peer does not hold', async (t) => {
  const a = await startMesh(t)
  const b = await startMesh(t, { bootstrap: [bootAddr(a)] })
  const data = randomBytes(100_000)
  const hash = createHash('sha256').update(data).digest()
  a.content.set(hash.toString('hex'), data)
  await eventually(() => b.mesh.peers().some((p) => p.nodeId === a.mesh.nodeId && p.connected) ? true : undefined)
  const got = await b.mesh.fetch(a.mesh.nodeId, hash)
  t.true(Buffer.from(got).equals(data))
  const missing = await t.throwsAsync(b.mesh.fetch(a.mesh.nodeId, createHash('sha256').update('nope').digest()))
  t.is((missing as { code?: string }).code, 'FETCH_NOT_FOUND')
})

test('a node restarted with the same key rejoins with the same id', async (t) => {
  const a = await startMesh(t)
  const identity = identityFromSeed(randomBytes(32))
  const first = await startMesh(t, { identity, bootstrap: [bootAddr(a)] })
  t.is(first.mesh.nodeId, identity.nodeId)
  await eventually(() => a.mesh.livePeer(identity.nodeId) ?? undefined)
  await first.mesh.stop()
  const second = await startMesh(t, { identity, bootstrap: [bootAddr(a)] })
  t.is(second.mesh.nodeId, identity.nodeId)
  t.is(second.mesh.libp2p().peerId.toString(), identity.nodeId)
  const since = Date.now()
  await eventually(() => {
    const hb = a.mesh.livePeer(identity.nodeId)
    return hb !== null && hb.atMs > since ? hb : undefined
  })
  t.pass()
})

test('a node behind NAT is reachable through a relay node (circuit relay v2)', async (t) => {
  const relay = await startMesh(t, { roles: ['relay'], containers: [] })
  const relayAddr = bootAddr(relay)
  // No direct listener at all: the only way in is the reservation on the relay.
  const hidden = await startMesh(t, { config: { listen: [], behindNat: true, relays: [relayAddr] } })
  hidden.content.set(createHash('sha256').update('through the relay').digest('hex'), Buffer.from('through the relay'))
  const circuit = await eventually(() => hidden.mesh.addresses().find((a) => a.includes('/p2p-circuit')))
  t.true(circuit.startsWith(relayAddr), circuit)
  t.false(hidden.mesh.addresses().some((a) => !a.includes('/p2p-circuit')), 'no direct address')
  const outsider = await startMesh(t, { bootstrap: [relayAddr] })
  const relayed = await outsider.mesh.libp2p().dial(multiaddr(circuit))
  t.true(relayed.remoteAddr.toString().includes('/p2p-circuit'), 'the dial to the hidden node goes through the relay')
  // Retried: the DHT may dial the same circuit at the same moment, and libp2p then drops one of the
  // two relayed connections (sometimes the one a fetch is opening a stream on).
  const got = await eventually(async () => await outsider.mesh.fetch(hidden.mesh.nodeId, createHash('sha256').update('through the relay').digest(), AbortSignal.timeout(5_000)).catch(() => undefined))
  t.is(Buffer.from(got).toString(), 'through the relay')
  // The hidden node may also dial the outsider itself (it can go out, just not be reached): such a
  // connection is inbound here. Every connection the outsider opened to it goes through the relay.
  const opened = outsider.mesh.libp2p().getConnections(relayed.remotePeer).filter((c) => c.direction === 'outbound')
  t.true(opened.every((c) => c.remoteAddr.toString().includes('/p2p-circuit')), opened.map((c) => c.remoteAddr.toString()).join(', '))
})
