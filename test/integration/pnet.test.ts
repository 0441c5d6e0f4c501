import test, { type ExecutionContext } from 'ava'
import { randomBytes } from 'node:crypto'
import { generateKey } from '@libp2p/pnet'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { defaultConfig } from '../../src/config/index.ts'
import type { MeshConfig, Role } from '../../src/config/types.ts'
import { encodeEnvelope, signEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import { mesh, type Authorize, type Ignored, type Mesh } from '../../src/mesh/index.ts'
import { encodeHeartbeat, PAYLOAD_TYPES, TOPICS, type TopicName } from '../../src/protocol/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { outsiderLibp2p, type OutsiderLibp2p } from '../helpers/outsider.ts'

// Who may join (the pre-shared key), act (authorize) and see (heartbeats only where schedulers
// are): real mesh nodes over TCP on 127.0.0.1, and an outsider built from the public libp2p
// packages alone.

interface Started { mesh: Mesh, identity: Identity }

function networkKey (): Uint8Array {
  const key = new Uint8Array(95)
  generateKey(key)
  return key
}

interface MeshOptions {
  roles?: Role[]
  bootstrap?: string[]
  networkKey?: Uint8Array
  hearsHeartbeats?: boolean
  authorize?: Authorize
  keepConnected?: () => string[]
  config?: Partial<MeshConfig>
}

async function startMesh (t: ExecutionContext, opts: MeshOptions = {}): Promise<Started> {
  const identity = identityFromSeed(randomBytes(32))
  const config: MeshConfig = {
    ...defaultConfig().mesh, listen: ['/ip4/127.0.0.1/tcp/0'], heartbeatIntervalMs: 1000, provideIntervalMs: 60_000, bootstrap: opts.bootstrap ?? [], ...opts.config
  }
  const m = mesh({ config, roles: opts.roles ?? ['worker'], containers: ['echo'], networkKey: opts.networkKey, hearsHeartbeats: opts.hearsHeartbeats })({
    identity,
    logger: silentLogger(),
    heartbeat: () => ({ cpuCores: 2, memoryBytes: 1 << 30, gpus: 0, grpcAddress: '', freeSlots: 2, stats: null, rosterVersion: 0 }),
    content: async () => undefined,
    authorize: opts.authorize,
    keepConnected: opts.keepConnected
  })
  await m.start()
  t.teardown(async () => await m.stop())
  return { mesh: m, identity }
}

function addr (s: Started): string {
  const a = s.mesh.addresses().find((x) => x.includes('/tcp/') && x.includes('/p2p/'))
  if (a === undefined) throw new Error('no mesh address')
  return a
}

type Outsider = OutsiderLibp2p

/** A stranger's node from the public packages, with a fresh key; `psk` when it holds a network key. */
async function outsider (t: ExecutionContext, psk?: Uint8Array): Promise<{ node: Outsider, identity: Identity }> {
  const seed = randomBytes(32)
  const node = await outsiderLibp2p(seed, { networkKey: psk })
  await node.start()
  t.teardown(async () => await node.stop())
  return { node, identity: identityFromSeed(seed) }
}

async function eventually<T> (fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

function heartbeat (id: Identity, atMs = Date.now()): Uint8Array {
  return encodeEnvelope(signEnvelope(id, PAYLOAD_TYPES.heartbeat, encodeHeartbeat({
    nodeId: id.nodeId, atMs, roles: ['worker'], containers: [], cpuCores: 1, memoryBytes: 1, gpus: 0, grpcAddress: '', freeSlots: 0, stats: null, intervalMs: 1000, rosterVersion: 0
  })))
}

const connectedTo = (s: Started, nodeId: string): boolean => s.mesh.peers().some((p) => p.nodeId === nodeId && p.connected)

test('without the network key an outsider cannot connect to a private mesh node at all; with it, it can', async (t) => {
  const key = networkKey()
  const node = await startMesh(t, { networkKey: key })
  const target = multiaddr(addr(node))

  const stranger = await outsider(t)
  await t.throwsAsync(stranger.node.dial(target, { signal: AbortSignal.timeout(10_000) }))
  const wrongKey = await outsider(t, networkKey())
  await t.throwsAsync(wrongKey.node.dial(target, { signal: AbortSignal.timeout(10_000) }))
  t.is(stranger.node.getConnections().length, 0)
  t.is(wrongKey.node.getConnections().length, 0)

  // The control: the same packages with the key connect, and the node lists the peer.
  const member = await outsider(t, key)
  const conn = await member.node.dial(target, { signal: AbortSignal.timeout(10_000) })
  t.is(conn.remotePeer.toString(), node.mesh.nodeId)
  await eventually(() => connectedTo(node, member.identity.nodeId))
  // Checked after the member's connection was seen, so the refused dials had all the time to show up.
  t.false(node.mesh.peers().some((p) => p.nodeId === stranger.identity.nodeId || p.nodeId === wrongKey.identity.nodeId))
})

test('two mesh nodes holding the same key form a mesh: heartbeats flow', async (t) => {
  const key = networkKey()
  const a = await startMesh(t, { networkKey: key, roles: ['scheduler'] })
  const b = await startMesh(t, { networkKey: key, bootstrap: [addr(a)] })
  await eventually(() => a.mesh.livePeer(b.mesh.nodeId) ?? undefined)
  t.true(connectedTo(b, a.mesh.nodeId))
})

test('a gossip author that authorize refuses is IGNOREd as NOT_ADMITTED, before decoding, and its sender is not scored down', async (t) => {
  const refusedIds = new Set<string>()
  const asked: Array<[TopicName, string]> = []
  const node = await startMesh(t, {
    authorize: (topic, author) => {
      asked.push([topic, author])
      return !refusedIds.has(author)
    }
  })
  const stranger = await outsider(t)
  refusedIds.add(stranger.identity.nodeId)
  const ignored: Ignored[] = []
  node.mesh.onIgnored((i) => ignored.push(i))
  await stranger.node.dial(multiaddr(addr(node)))
  await eventually(() => stranger.node.services.pubsub.getSubscribers(TOPICS.heartbeats).some((p) => p.toString() === node.mesh.nodeId))
  // A valid heartbeat, signed by its author: refused only because of who wrote it.
  await stranger.node.services.pubsub.publish(TOPICS.heartbeats, heartbeat(stranger.identity))
  // Not even an envelope: had it been decoded it would have been REJECTed as malformed.
  await stranger.node.services.pubsub.publish(TOPICS.heartbeats, randomBytes(100))
  await eventually(() => ignored.filter((i) => i.code === 'NOT_ADMITTED').length >= 2)
  t.true(ignored.every((i) => i.from === stranger.identity.nodeId && i.topic === TOPICS.heartbeats))
  t.deepEqual(node.mesh.rejections(), {})
  t.is(node.mesh.ignored()[`${TOPICS.heartbeats}:NOT_ADMITTED`], 2)
  t.is(node.mesh.livePeer(stranger.identity.nodeId), null)
  t.true(asked.some(([topic, author]) => topic === 'heartbeats' && author === stranger.identity.nodeId))
  t.true(node.mesh.libp2p().services.pubsub.getScore(stranger.identity.nodeId) >= 0)
})

test('heartbeats reach only the nodes that hear them, over direct connections to them; workers learn none of each other\'s', async (t) => {
  const scheduler = await startMesh(t, { roles: ['scheduler'], hearsHeartbeats: true })
  const w1 = await startMesh(t, { hearsHeartbeats: false, bootstrap: [addr(scheduler)] })
  // w2 knows only w1, and is told to keep the scheduler connected: it must find it in the DHT.
  const w2 = await startMesh(t, { hearsHeartbeats: false, bootstrap: [addr(w1)], keepConnected: () => [scheduler.mesh.nodeId] })

  // The scheduler hears both workers, w2's over the connection w2 opened itself. Finding the scheduler
  // in the DHT takes a few lookups; on a machine with every core busy that took over 20 s once.
  await eventually(() => scheduler.mesh.livePeer(w1.mesh.nodeId) ?? undefined, 60_000)
  await eventually(() => scheduler.mesh.livePeer(w2.mesh.nodeId) ?? undefined, 60_000)
  t.true(connectedTo(w2, scheduler.mesh.nodeId))

  // Cut: w2 dials the scheduler again (keepConnected here; in a mesh this small the DHT's keep-alive
  // of its closest peers would too: the dialler's own logic is tested in test/unit/mesh-limits-dialer),
  // and its heartbeats, which no worker forwards, reach the scheduler again.
  await scheduler.mesh.libp2p().hangUp(peerIdFromString(w2.identity.nodeId))
  const cut = Date.now()
  // Whichever side redials first (w2's keepConnected, or the scheduler's own DHT upkeep), a new connection forms.
  await eventually(() => w2.mesh.libp2p().getConnections().some((c) => c.remotePeer.toString() === scheduler.mesh.nodeId && c.timeline.open >= cut), 60_000)
  await eventually(() => (scheduler.mesh.livePeer(w2.mesh.nodeId)?.atMs ?? 0) > cut, 60_000)

  // Workers subscribe to no heartbeats: they learn nothing of each other's (or the scheduler's) load.
  const since = Date.now()
  await eventually(() => (scheduler.mesh.livePeer(w2.mesh.nodeId)?.atMs ?? 0) > since + 2_000)
  t.is(w1.mesh.livePeer(w2.mesh.nodeId), null)
  t.is(w2.mesh.livePeer(w1.mesh.nodeId), null)
  t.is(w1.mesh.livePeer(scheduler.mesh.nodeId), null)
  t.false(w1.mesh.libp2p().services.pubsub.getTopics().includes(TOPICS.heartbeats))
  t.true(w1.mesh.libp2p().services.pubsub.getTopics().includes(TOPICS.acks), 'the other topics are still heard')
})
