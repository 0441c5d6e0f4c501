import test, { type ExecutionContext } from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import { defaultConfig } from '../../src/config/index.ts'
import type { MeshConfig, Role } from '../../src/config/types.ts'
import { encodeEnvelope, signEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import {
  encodeHeartbeat, mesh, roleKey, containerKey, PAYLOAD_TYPES, TOPICS, type Heartbeat, type Mesh, type MeshMessage, type Rejection
} from '../../src/mesh/index.ts'
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
    heartbeat: () => ({ cpuCores: 2, memoryBytes: 1 << 30, gpus: 0, grpcAddress: '', freeSlots: 2, stats: null }),
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

test('forged, wrong-type, stale, oversized and garbage gossip is rejected while valid messages still flow', async (t) => {
  const victim = await startMesh(t, { config: { maxGossipBytes: 2048 } })
  const attacker = await startMesh(t, { bootstrap: [bootAddr(victim)] })
  const honest = await startMesh(t, { bootstrap: [bootAddr(victim)] })
  const rejections: Rejection[] = []
  victim.mesh.onRejected((r) => rejections.push(r))
  const heartbeats: Array<MeshMessage<Heartbeat>> = []
  victim.mesh.subscribe<Heartbeat>(TOPICS.heartbeats, (m) => heartbeats.push(m))
  // Wait until gossip flows between attacker and victim.
  await eventually(() => heartbeats.some((m) => m.from === attacker.mesh.nodeId))

  const pubsub = attacker.mesh.libp2p().services.pubsub
  const hb = (nodeId: string, atMs = Date.now()): Uint8Array => encodeHeartbeat({
    nodeId, atMs, roles: ['worker'], containers: [], cpuCores: 1, memoryBytes: 1, gpus: 0, grpcAddress: '', freeSlots: 0, stats: null, intervalMs: 1000
  })
  const stranger = identityFromSeed(randomBytes(32))
  const sends: Array<[string, Uint8Array]> = [
    // A heartbeat signed by another key than the publisher's.
    ['SIGNER_MISMATCH', encodeEnvelope(signEnvelope(stranger, PAYLOAD_TYPES.heartbeat, hb(stranger.nodeId)))],
    // A valid signature over the wrong payload type for this topic.
    ['WRONG_PAYLOAD_TYPE', encodeEnvelope(signEnvelope(attacker.identity, PAYLOAD_TYPES.ack, hb(attacker.identity.nodeId)))],
    // An old message replayed.
    ['STALE', encodeEnvelope(signEnvelope(attacker.identity, PAYLOAD_TYPES.heartbeat, hb(attacker.identity.nodeId, Date.now() - 3_600_000)))],
    // Bigger than max_gossip_bytes.
    ['OVERSIZED', new Uint8Array(4096).fill(7)],
    // Not an envelope at all.
    ['MALFORMED_ENVELOPE', randomBytes(200)]
  ]
  // A correctly signed envelope whose signature bytes were then changed.
  const tampered = signEnvelope(attacker.identity, PAYLOAD_TYPES.heartbeat, hb(attacker.identity.nodeId))
  tampered.signature[10] ^= 0xff
  sends.push(['BAD_SIGNATURE', encodeEnvelope(tampered)])
  for (const [, data] of sends) await pubsub.publish(TOPICS.heartbeats, data).catch(() => {})

  await eventually(() => rejections.length >= sends.length ? true : undefined).catch(() => {
    t.log('rejections seen:', rejections.map((r) => `${r.code}: ${r.reason}`))
  })
  t.deepEqual(rejections.map((r) => r.code).sort(), sends.map(([code]) => code).sort())
  t.true(rejections.every((r) => r.from === attacker.mesh.nodeId || r.code === 'SIGNER_MISMATCH'))
  t.is(victim.mesh.rejections()[`${TOPICS.heartbeats}:STALE`], 1)
  t.false(heartbeats.some((m) => m.from === stranger.nodeId), 'the forged heartbeat was never delivered')
  // The victim keeps working: heartbeats from the honest peer still arrive after the attack.
  const since = Date.now()
  await eventually(() => heartbeats.some((m) => m.from === honest.mesh.nodeId && m.value.atMs > since) ? true : undefined)
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
  await outsider.mesh.libp2p().dial(multiaddr(circuit))
  const got = await outsider.mesh.fetch(hidden.mesh.nodeId, createHash('sha256').update('through the relay').digest())
  t.is(Buffer.from(got).toString(), 'through the relay')
  const conn = outsider.mesh.libp2p().getConnections().find((c) => c.remotePeer.toString() === hidden.mesh.nodeId)
  t.truthy(conn)
  t.true(conn!.remoteAddr.toString().includes('/p2p-circuit'), 'the connection goes through the relay')
})
