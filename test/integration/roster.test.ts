import test, { type ExecutionContext } from 'ava'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from 'it-length-prefixed-stream'
import { defaultConfig } from '../../src/config/index.ts'
import type { MeshConfig } from '../../src/config/types.ts'
import { decodeEnvelope, signEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import { mesh, type Mesh } from '../../src/mesh/index.ts'
import { encodeRoster, PAYLOAD_TYPES, ROSTER_PROTOCOL, type Roster } from '../../src/protocol/index.ts'
import {
  encodeRosterRequest, rosterBook, rosterSync, signRoster, verifyRoster, type RosterBook, type RosterChange, type RosterSync, type RosterSyncInit
} from '../../src/roster/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'

// Real libp2p nodes over TCP on 127.0.0.1, each with a roster book and roster sync, as a node wires them.

const MESH = 'edge'
const operator = identityFromSeed(randomBytes(32))

interface Member {
  mesh: Mesh
  book: RosterBook
  sync: RosterSync
  identity: Identity
  file: string
  changes: RosterChange[]
  stop: () => Promise<void>
}

function meshConfig (bootstrap: string[]): MeshConfig {
  const defaults = defaultConfig().mesh
  return {
    ...defaults,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    heartbeatIntervalMs: 1000,
    provideIntervalMs: 60_000,
    // Open: these tests are about the roster, not the pre-shared key that guards a private mesh.
    admission: { ...defaults.admission, mode: 'open', meshName: MESH, operators: [operator.nodeId] }
  }
}

async function tempDir (t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-roster-mesh-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  return dir
}

async function startMember (t: ExecutionContext, opts: { bootstrap?: string[], identity?: Identity, file?: string, sync?: RosterSyncInit } = {}): Promise<Member> {
  const identity = opts.identity ?? identityFromSeed(randomBytes(32))
  const file = opts.file ?? path.join(await tempDir(t), 'roster.json')
  const logger = silentLogger()
  const book = rosterBook({ meshName: MESH, operators: [operator.nodeId], file })({ logger })
  const changes: RosterChange[] = []
  book.on('changed', (c) => changes.push(c))
  await book.start()
  const m = mesh({ config: meshConfig(opts.bootstrap ?? []), roles: ['worker'], containers: [] })({
    identity,
    logger,
    heartbeat: () => ({ cpuCores: 2, memoryBytes: 1 << 30, gpus: 0, grpcAddress: '', freeSlots: 2, stats: null, rosterVersion: book.version() }),
    content: async () => undefined
  })
  await m.start()
  const sync = rosterSync(opts.sync)({ mesh: m, roster: book, identity, logger })
  await sync.start()
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    await sync.stop()
    await m.stop()
    await book.stop()
  }
  t.teardown(stop)
  return { mesh: m, book, sync, identity, file, changes, stop }
}

function bootAddr (m: Member): string {
  return m.mesh.addresses().find((a) => a.includes('/tcp/') && a.includes('/p2p/')) ?? `${m.mesh.addresses()[0]}/p2p/${m.mesh.nodeId}`
}

async function eventually<T> (fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v !== undefined && v !== false) return v
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/** Both hear each other's heartbeats: gossip flows between them. */
async function linked (a: Member, b: Member): Promise<void> {
  await eventually(() => a.mesh.livePeer(b.mesh.nodeId) !== null && b.mesh.livePeer(a.mesh.nodeId) !== null)
}

function roster (version: number, members: Identity[], overrides: Partial<Roster> = {}): Roster {
  return {
    mesh: MESH,
    version,
    issuedAtMs: Date.now(),
    expiresAtMs: 0,
    members: members.map((m, i) => ({ nodeId: m.nodeId, roles: i === 0 ? ['scheduler', 'worker'] : ['worker'], name: `node-${i}` })),
    ...overrides
  }
}

/** What the UpdateRoster handler does: apply here, then pass it on to the mesh. */
async function push (m: Member, r: Roster): Promise<void> {
  const held = await m.book.apply(signRoster(operator, r), 'control')
  await m.sync.publish(held.envelope)
}

test('an update applied at one node reaches the others over the roster topic, without restarts', async (t) => {
  // B and C never ask peers (no catch-up): whatever reaches them came over the topic.
  const a = await startMember(t)
  const b = await startMember(t, { bootstrap: [bootAddr(a)], sync: { maxInFlight: 0 } })
  const c = await startMember(t, { bootstrap: [bootAddr(a)], sync: { maxInFlight: 0 } })
  await linked(a, b)
  await linked(a, c)
  t.is(b.book.version(), 0)

  await push(a, roster(1, [a.identity, b.identity, c.identity]))
  await eventually(() => b.book.version() === 1 && c.book.version() === 1)
  t.deepEqual(b.book.rolesOf(a.identity.nodeId), ['scheduler', 'worker'])
  t.deepEqual(c.book.rolesOf(b.identity.nodeId), ['worker'])
  t.deepEqual(b.changes.map((x) => [x.source, x.roster.version]), [['gossip', 1]])
  t.deepEqual(c.changes.map((x) => [x.source, x.roster.version]), [['gossip', 1]])

  // A second update, pushed to another node, removes a member everywhere.
  await linked(b, a)
  await push(b, roster(2, [a.identity, b.identity]))
  await eventually(() => a.book.version() === 2 && c.book.version() === 2)
  t.false(a.book.isMember(c.identity.nodeId))
  t.deepEqual(c.book.rolesOf(c.identity.nodeId), [])
  // Each node rewrote its roster file: a restart keeps the update.
  t.is(JSON.parse(await readFile(c.file, 'utf8')).payload_type, PAYLOAD_TYPES.roster)
})

test('a node that starts, or restarts, after an update catches up over /inframind/roster/1.0.0', async (t) => {
  const a = await startMember(t)
  // Applied at A only and never published: a late node can learn it only by asking.
  await a.book.apply(signRoster(operator, roster(2, [a.identity])), 'control')

  const late = await startMember(t, { bootstrap: [bootAddr(a)] })
  await eventually(() => late.book.version() === 2)
  t.deepEqual(late.changes.map((x) => [x.source, x.roster.version]), [['catch-up', 2]])
  t.deepEqual(late.book.rolesOf(a.identity.nodeId), ['scheduler', 'worker'])

  // Offline during the next update: on restart it loads what it had, then asks again.
  await late.stop()
  await a.book.apply(signRoster(operator, roster(3, [a.identity, late.identity])), 'control')
  const again = await startMember(t, { bootstrap: [bootAddr(a)], identity: late.identity, file: late.file })
  t.is(again.changes[0]?.source, 'file')
  t.is(again.changes[0]?.roster.version, 2)
  await eventually(() => again.book.version() === 3)
  t.deepEqual(again.changes.map((x) => [x.source, x.roster.version]), [['file', 2], ['catch-up', 3]])

  // Asked directly, a peer with nothing newer answers so, and nothing changes.
  t.false(await again.sync.catchUp(a.mesh.nodeId))
  t.is(again.book.version(), 3)
})

test('the catch-up protocol: a varint version in, the signed roster envelope (or nothing newer) out', async (t) => {
  const a = await startMember(t)
  const asker = await startMember(t, { bootstrap: [bootAddr(a)] })
  await eventually(() => asker.mesh.libp2p().getConnections().some((c) => c.remotePeer.toString() === a.mesh.nodeId))
  const ask = async (version: number): Promise<Uint8Array> => {
    const stream = await asker.mesh.libp2p().dialProtocol(peerIdFromString(a.mesh.nodeId), ROSTER_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
    const lp = lpStream(stream)
    await lp.write(encodeRosterRequest(version))
    const body = (await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray()
    await stream.close()
    return body
  }
  t.is((await ask(0)).byteLength, 0, 'no roster held: an empty frame')
  const env = signRoster(operator, roster(4, [a.identity]))
  await a.book.apply(env, 'control')
  const body = await ask(0)
  t.deepEqual(decodeEnvelope(body), env)
  t.is(verifyRoster(decodeEnvelope(body), { operators: [operator.nodeId], meshName: MESH, now: Date.now() }).version, 4)
  t.deepEqual(decodeEnvelope(await ask(3)), env)
  t.is((await ask(4)).byteLength, 0, 'the asker holds it already')
  t.is((await ask(9)).byteLength, 0, 'the asker holds a newer one')
})

test('a stale, forged, tampered, foreign or expired roster on the topic changes nothing', async (t) => {
  const a = await startMember(t)
  const attacker = await startMember(t, { bootstrap: [bootAddr(a)] })
  const held = signRoster(operator, roster(2, [a.identity]))
  await a.book.apply(held, 'control')
  await linked(a, attacker)
  const fileBefore = await readFile(a.file, 'utf8')
  const stranger = identityFromSeed(randomBytes(32))
  const takeover = roster(99, [attacker.identity])
  const notices = [
    signRoster(operator, roster(1, [a.identity, attacker.identity])),
    signRoster(stranger, takeover),
    { ...held, payload: encodeRoster(takeover) },
    signRoster(operator, roster(50, [attacker.identity], { mesh: 'other' })),
    signRoster(operator, roster(60, [attacker.identity], { expiresAtMs: Date.now() - 1000 })),
    // The attacker's own key claiming the operator's id is not the operator's signature.
    { ...signEnvelope(attacker.identity, PAYLOAD_TYPES.roster, encodeRoster(takeover)), publicKey: operator.publicKey }
  ]
  for (const env of notices) await attacker.mesh.publish('roster', { roster: env, nodeId: attacker.identity.nodeId, atMs: Date.now() })

  const refused = await eventually(() => {
    const r = a.sync.refused()
    return (r.ROSTER_UNSIGNED ?? 0) >= 2 && ['ROSTER_STALE', 'ROSTER_UNKNOWN_OPERATOR', 'ROSTER_WRONG_MESH', 'ROSTER_EXPIRED'].every((code) => (r[code] ?? 0) >= 1) ? r : undefined
  })
  t.deepEqual(refused, { ROSTER_STALE: 1, ROSTER_UNKNOWN_OPERATOR: 1, ROSTER_UNSIGNED: 2, ROSTER_WRONG_MESH: 1, ROSTER_EXPIRED: 1 })
  t.is(a.book.version(), 2)
  t.deepEqual(a.book.rolesOf(attacker.identity.nodeId), [])
  t.deepEqual(a.book.rolesOf(a.identity.nodeId), ['scheduler', 'worker'])
  t.deepEqual(a.changes.map((x) => x.roster.version), [2])
  t.is(await readFile(a.file, 'utf8'), fileBefore)
})
