import test from 'ava'
import { randomBytes } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { defaultConfig } from '../../src/config/index.ts'
import { encodeEnvelope, signEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import { mesh } from '../../src/mesh/index.ts'
import { encodeHeartbeat, PAYLOAD_TYPES, TOPICS } from '../../src/protocol/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { eventually, meshAddr, startFor } from '../helpers/node.ts'
import { outsiderLibp2p } from '../helpers/outsider.ts'

// The attack of issue 9: a stranger built from the public libp2p packages, with a fresh key of its
// own, floods a node that hears heartbeats with ~1,000 valid, self-signed heartbeats a second.

/** Heartbeats the outsider sends per 10 ms tick: ~1,000 a second. */
const PER_TICK = 10
/** Flood length: several seconds, counted in messages so a slow machine sends as many. */
const FLOOD_MESSAGES = 5_000

function heartbeat (id: Identity, atMs: number): Uint8Array {
  return encodeEnvelope(signEnvelope(id, PAYLOAD_TYPES.heartbeat, encodeHeartbeat({
    nodeId: id.nodeId, atMs, roles: ['worker'], containers: ['echo'], cpuCores: 64, memoryBytes: 2 ** 40, gpus: 8, grpcAddress: '', freeSlots: 64, stats: null, intervalMs: 1000, rosterVersion: 0
  })))
}

test('a valid-heartbeat flood is rate limited, then rejected as FLOODING, and the flooder banned; honest heartbeats and the API carry on', async (t) => {
  // A gateway of an open mesh (anyone may offer to work, so the stranger's heartbeats are admitted):
  // only the per-peer limits stand between it and the flood.
  const victim = await startFor(t, { mesh: { admission: { mode: 'open' } }, node: { roles: ['scheduler', 'gateway'] } })
  const victimMesh = victim.node.mesh!
  const target = meshAddr(victim)

  const honestId = identityFromSeed(randomBytes(32))
  const honest = mesh({
    config: { ...defaultConfig().mesh, listen: ['/ip4/127.0.0.1/tcp/0'], heartbeatIntervalMs: 1000, provideIntervalMs: 60_000, bootstrap: [target] },
    roles: ['worker'],
    containers: ['echo'],
    hearsHeartbeats: false
  })({
    identity: honestId,
    logger: silentLogger(),
    heartbeat: () => ({ cpuCores: 2, memoryBytes: 1 << 30, gpus: 0, grpcAddress: '', freeSlots: 2, stats: null, rosterVersion: 0 }),
    content: async () => undefined
  })
  await honest.start()
  t.teardown(async () => await honest.stop())
  await eventually(() => victimMesh.livePeer(honestId.nodeId))

  const seed = randomBytes(32)
  const outsiderId = identityFromSeed(seed)
  const outsider = await outsiderLibp2p(seed)
  await outsider.start()
  t.teardown(async () => await outsider.stop())
  await outsider.dial(multiaddr(target))
  await eventually(() => outsider.services.pubsub.getSubscribers(TOPICS.heartbeats).some((p) => p.toString() === victimMesh.nodeId))

  const honestDuringFlood: number[] = []
  let flooding = true
  victimMesh.subscribe('heartbeats', (m) => {
    if (flooding && m.from === honestId.nodeId) honestDuringFlood.push(m.value.atMs)
  })

  // The flood, with the API asked in the middle of it.
  let atMs = Date.now()
  let api: Promise<unknown> | undefined
  for (let sent = 0; sent < FLOOD_MESSAGES; sent += PER_TICK) {
    for (let i = 0; i < PER_TICK; i++) {
      atMs = Math.max(Date.now(), atMs + 1)
      await outsider.services.pubsub.publish(TOPICS.heartbeats, heartbeat(outsiderId, atMs)).catch(() => {})
    }
    if (sent === FLOOD_MESSAGES / 2) api = victim.client.getInfo()
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  // Honest heartbeats keep being accepted while the stranger floods (it keeps publishing until one is).
  await eventually(async () => {
    if (honestDuringFlood.length > 0) return true
    atMs = Math.max(Date.now(), atMs + 1)
    await outsider.services.pubsub.publish(TOPICS.heartbeats, heartbeat(outsiderId, atMs)).catch(() => {})
    return false
  })
  flooding = false

  const info = await api as { nodeId: string }
  t.is(info.nodeId, victimMesh.nodeId, 'the node\'s API answered during the flood')
  const ignored = victimMesh.ignored()
  const rejected = victimMesh.rejections()
  t.log(`RATE_LIMITED ${ignored[`${TOPICS.heartbeats}:RATE_LIMITED`] ?? 0}, FLOODING ${rejected[`${TOPICS.heartbeats}:FLOODING`] ?? 0}`)
  t.true((ignored[`${TOPICS.heartbeats}:RATE_LIMITED`] ?? 0) > 0)
  t.true((rejected[`${TOPICS.heartbeats}:FLOODING`] ?? 0) > 0)
  t.deepEqual(Object.keys(rejected), [`${TOPICS.heartbeats}:FLOODING`], 'nothing else was rejected')
  // The flooder's heartbeats that fit its rate were accepted (they are valid): never the flood.
  t.true((victimMesh.livePeer(outsiderId.nodeId)?.atMs ?? 0) < atMs)

  // Banned: its connections closed, and a redial is refused.
  const ban = await eventually(() => victimMesh.banned().find((b) => b.nodeId === outsiderId.nodeId))
  t.true(ban.untilMs > Date.now())
  t.regex(ban.reason, /flooding/)
  await eventually(() => outsider.getConnections(peerIdFromString(victimMesh.nodeId)).length === 0)
  let reopened = 0
  victimMesh.libp2p().addEventListener('connection:open', (evt) => {
    if (evt.detail.remotePeer.toString() === outsiderId.nodeId) reopened++
  })
  const redial = await outsider.dial(multiaddr(target), { signal: AbortSignal.timeout(10_000) }).then(() => 'connected', () => 'refused')
  t.log(`redial: ${redial}`)
  if (redial === 'connected') {
    // The dialler finishes its side of the handshake (and, optimistically, of the muxer choice)
    // before the node, once it knows who is calling, drops the connection.
    await eventually(() => outsider.getConnections(peerIdFromString(victimMesh.nodeId)).length === 0)
  }
  t.is(reopened, 0, 'the node never opened a connection to it again')
  t.false(victimMesh.peers().some((p) => p.nodeId === outsiderId.nodeId && p.connected), 'the node holds no connection to it')
  const metrics = await victim.node.telemetry.metrics.registry.getSingleMetricAsString('inframind_peers_banned_total')
  t.regex(metrics, /inframind_peers_banned_total [1-9]/)

  // The honest peer was neither banned nor disconnected, and is still heard.
  t.false(victimMesh.banned().some((b) => b.nodeId === honestId.nodeId))
  const after = Date.now()
  await eventually(() => (victimMesh.livePeer(honestId.nodeId)?.atMs ?? 0) > after)
  t.true(victimMesh.libp2p().services.pubsub.getScore(honestId.nodeId) >= 0)
})
