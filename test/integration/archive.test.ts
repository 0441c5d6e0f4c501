import { signedReceipt } from '../helpers/receipts.ts'
import anyTest, { type TestFn } from 'ava'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { admission } from '../../src/admission/index.ts'
import { archive, archiveSink, verifyArchiveRecord, verifyPool, ARCHIVE_LOG_NAME, type Archive, type ArchiveSink, type VerifyPool } from '../../src/archive/index.ts'
import type { Role } from '../../src/config/types.ts'
import { defaultConfig } from '../../src/config/index.ts'
import { decodeEnvelope, encodeEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import type { Identity } from '../../src/identity/types.ts'
import { mesh, type Mesh } from '../../src/mesh/index.ts'
import { ARCHIVE_SYNC_PROTOCOL } from '../../src/protocol/index.ts'
import { decodeReceipt, receiptHash, sha256 } from '../../src/receipt/index.ts'
import { chooseValidators, signAttestation, signCertificate } from '../../src/verification/index.ts'
import { listFrom, pushTo, recordKey, recordLog, recordSync, sha256Hex, type RecordLog, type RecordSync } from '../../src/records/index.ts'
import { levelStore } from '../../src/store/index.ts'
import type { JobStore } from '../../src/store/types.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { createMetrics } from '../../src/telemetry/metrics.ts'
import type { Startable } from '../../src/types.ts'
import { eventually } from '../helpers/node.ts'

/** A mesh node built from components around a real libp2p node on 127.0.0.1 and a real LevelDB. */
interface Peer {
  identity: Identity
  mesh: Mesh
  store: JobStore
  dir: string
  parts: Startable[]
  archive?: Archive
  sink?: ArchiveSink
  stop(): Promise<void>
}

interface Ctx {
  roles: Map<string, Role[]>
  running: Set<Peer>
  dirs: string[]
}

const test = anyTest as TestFn<Ctx>

test.beforeEach((t) => {
  t.context.roles = new Map()
  t.context.running = new Set()
  t.context.dirs = []
})

test.afterEach.always(async (t) => {
  for (const p of [...t.context.running].reverse()) await p.stop()
  for (const dir of t.context.dirs) await rm(dir, { recursive: true, force: true })
})

/** Sync often in tests, so a catch-up is seen within seconds. */
const SYNC_INTERVAL_MS = 300

interface StartOptions {
  roles: Role[]
  identity?: Identity
  dir?: string
  bootstrap?: Peer[]
  /** Build an archive component (default: when the roles include archive). */
  archive?: boolean
  sink?: boolean
  replicas?: number
}

function meshAddrOf (p: Peer): string {
  const a = p.mesh.addresses().find((x) => x.includes('/p2p/') && x.includes('127.0.0.1'))
  if (a === undefined) throw new Error('no mesh address')
  return a
}

async function startPeer (t: { context: Ctx }, opts: StartOptions): Promise<Peer> {
  const identity = opts.identity ?? identityFromSeed(randomBytes(32))
  t.context.roles.set(identity.nodeId, opts.roles)
  const dir = opts.dir ?? await mkdtemp(path.join(os.tmpdir(), 'inframind-archive-'))
  if (opts.dir === undefined) t.context.dirs.push(dir)
  const roles = t.context.roles
  const adm = admission({ mode: 'private', trustedSchedulers: [] })({ roster: { rolesOf: (id) => roles.get(id) ?? [] } })
  const logger = silentLogger()
  const store = levelStore({ path: path.join(dir, 'store'), maxResults: 10 })({ logger })
  const m = mesh({
    config: { ...defaultConfig().mesh, listen: ['/ip4/127.0.0.1/tcp/0'], heartbeatIntervalMs: 1000, provideIntervalMs: 60_000, bootstrap: (opts.bootstrap ?? []).map(meshAddrOf) },
    roles: opts.roles,
    containers: [],
    hearsHeartbeats: false
  })({
    identity,
    logger,
    heartbeat: () => ({ cpuCores: 2, memoryBytes: 1 << 30, gpus: 0, grpcAddress: '', freeSlots: 0, stats: null, rosterVersion: 0 }),
    content: async () => undefined,
    authorize: (topic, author) => adm.mayPublish(topic, author)
  })
  const parts: Startable[] = [store, m]
  const peer: Peer = {
    identity,
    mesh: m,
    store,
    dir,
    parts,
    async stop () {
      t.context.running.delete(peer)
      for (const part of [...parts].reverse()) await part.stop()
    }
  }
  if (opts.archive ?? opts.roles.includes('archive')) {
    peer.archive = archive({ replicas: opts.replicas, syncIntervalMs: SYNC_INTERVAL_MS })({ mesh: m, admission: adm, store, logger, metrics: createMetrics() })
    parts.push(peer.archive)
  }
  if (opts.sink === true) {
    peer.sink = archiveSink({ replicas: opts.replicas, flushMs: 50 })({ mesh: m, admission: adm, logger })
    parts.push(peer.sink)
  }
  t.context.running.add(peer)
  for (const part of parts) await part.start()
  return peer
}

const worker = identityFromSeed(new Uint8Array(32).fill(61))
const scheduler = identityFromSeed(new Uint8Array(32).fill(62))

const receiptOf = (jobId: string): Uint8Array => signedReceipt(worker, scheduler, jobId)

const validatorIds = [71, 72, 73].map((n) => identityFromSeed(new Uint8Array(32).fill(n)))

/** A valid certificate (v = 2, q = 2, re-execution) of a job, and the receipt envelope it carries. */
function certificateFor (jobId: string): { cert: Uint8Array, receiptData: Uint8Array } {
  const receiptData = receiptOf(jobId)
  const receiptEnv = decodeEnvelope(receiptData)
  const r = decodeReceipt(receiptEnv.payload)
  const chosenIds = chooseValidators(r.jobHash, validatorIds.map((v) => v.nodeId), worker.nodeId, 2)
  const attestations = chosenIds.map((id) => {
    const v = validatorIds.find((x) => x.nodeId === id) as Identity
    return signAttestation(v, { receiptHash: receiptHash(receiptEnv), jobId, workerId: worker.nodeId, validatorId: id, verdict: 'agree', method: 'reexecution', outputHash: r.outputHash, reason: '', atMs: 1 })
  })
  const cert = signCertificate(scheduler, {
    jobId, policy: { method: 'reexecute', validators: 2, quorum: 2 }, receipt: receiptEnv, attestations, chosen: chosenIds, schedulerId: scheduler.nodeId, issuedAtMs: 2, resolution: '', outputHash: r.outputHash
  })
  return { cert: encodeEnvelope(cert), receiptData }
}

const receipts = (prefix: string, n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => receiptOf(`${prefix}-${i}`))

/** How many of `hashes` the archive holds (a verified read of each). */
async function held (a: Archive, hashes: string[]): Promise<number> {
  let n = 0
  for (const h of hashes) if (await a.log.has(h)) n++
  return n
}

async function connectedAll (peers: Peer[]): Promise<void> {
  await eventually(() => peers.every((p) => p.archive === undefined || p.archive.liveArchives().length === peers.filter((q) => q.archive !== undefined).length))
}

test('an archive stopped and restarted catches up every record written while it was down', async (t) => {
  const aId = identityFromSeed(randomBytes(32))
  const a = await startPeer(t, { roles: ['archive'], identity: aId })
  const b = await startPeer(t, { roles: ['archive'], bootstrap: [a] })
  const producer = await startPeer(t, { roles: ['scheduler'], bootstrap: [a, b], sink: true })
  await connectedAll([a, b])
  await eventually(() => producer.mesh.libp2p().getConnections().length >= 2)

  const before = receipts('before', 50)
  for (const r of before) producer.sink?.push('receipt', r)
  await producer.sink?.flush()
  const beforeHashes = before.map(sha256Hex)
  // Two archives, two replicas: both hold everything.
  await eventually(async () => await held(a.archive as Archive, beforeHashes) === 50 && await held(b.archive as Archive, beforeHashes) === 50)

  await a.stop()
  await eventually(() => producer.mesh.libp2p().getConnections().every((c) => c.remotePeer.toString() !== aId.nodeId))
  const during = receipts('during', 400)
  for (const r of during) producer.sink?.push('receipt', r)
  await producer.sink?.flush()
  const duringHashes = during.map(sha256Hex)
  t.is(await held(b.archive as Archive, duringHashes), 400)

  const again = await startPeer(t, { roles: ['archive'], identity: aId, dir: a.dir, bootstrap: [b, producer] })
  const restarted = again.archive as Archive
  // It kept what it had, and catches up the rest from b.
  t.is(await held(restarted, beforeHashes), 50)
  await eventually(async () => await held(restarted, duringHashes) === 400)
  t.is(restarted.log.count(), 450)
  // Each record verifies when read, and is found by its job id.
  const reply = await restarted.getReceipt({ jobId: 'during-399' })
  t.is(reply.hash, duringHashes[399])
  t.is(reply.archiveId, aId.nodeId)
  t.deepEqual(reply.record?.data, during[399])
  t.deepEqual(reply.record?.nodeIds, [worker.nodeId, scheduler.nodeId])
  t.is(producer.sink?.stats().failed, 0)
})

test('a record corrupted on one archive\'s disk is detected and served from the other', async (t) => {
  const a = await startPeer(t, { roles: ['archive'] })
  const b = await startPeer(t, { roles: ['archive'], bootstrap: [a] })
  await connectedAll([a, b])
  const archiveA = a.archive as Archive
  const archiveB = b.archive as Archive
  const data = receipts('fragile', 3)
  await archiveA.keep(data.map((d) => ({ kind: 'receipt', data: d })))
  const hashes = data.map(sha256Hex)
  // b catches up from a (both are holders of everything).
  await eventually(async () => await held(archiveB, hashes) === 3)

  const repaired: string[] = []
  const lost: string[] = []
  archiveA.on('repaired', (r) => repaired.push(r.hash))
  archiveA.on('lost', (r) => lost.push(r.hash))
  const rawA = a.store.section(ARCHIVE_LOG_NAME)
  // Bit rot: one byte of the stored receipt flipped (the signature no longer holds).
  const stored = await rawA.get(recordKey(hashes[0]))
  t.truthy(stored)
  const flipped = Uint8Array.from(stored as Uint8Array)
  const at = Buffer.from(flipped).indexOf(Buffer.from(data[0]))
  t.true(at > 0)
  flipped[at + data[0].length - 10] ^= 0x01
  await rawA.put(recordKey(hashes[0]), flipped)

  const byHash = await archiveA.getReceipt({ hash: hashes[0] })
  t.deepEqual(byHash.record?.data, data[0])
  t.deepEqual(repaired, [hashes[0]])
  // Stored again on a, good this time.
  t.deepEqual((await archiveA.log.get(hashes[0]))?.data, data[0])

  // By job id: the corrupt copy is dropped from the index walk, repaired, and served.
  await rawA.put(recordKey(hashes[1]), Uint8Array.from([1, 2, 3]))
  const byJob = await archiveA.getReceipt({ jobId: 'fragile-1' })
  t.deepEqual(byJob.record?.data, data[1])
  t.deepEqual(repaired, [hashes[0], hashes[1]])

  // Corrupt on both archives: never served, reported as lost.
  await rawA.put(recordKey(hashes[2]), Uint8Array.from([9]))
  await b.store.section(ARCHIVE_LOG_NAME).put(recordKey(hashes[2]), Uint8Array.from([9]))
  await t.throwsAsync(archiveA.getReceipt({ hash: hashes[2] }), { code: 'RECORD_NOT_FOUND' })
  t.deepEqual(lost, [hashes[2]])
  t.false(await archiveA.log.has(hashes[2]))
  await t.throwsAsync(archiveA.getCertificate({ hash: hashes[0] }), { code: 'RECORD_NOT_FOUND' })
  await t.throwsAsync(archiveA.getReceipt({}), { code: 'INVALID_RECORD_REQUEST' })
})

test('records are held by their two rendezvous holders, and re-replicated to the next in rank when one dies', async (t) => {
  const a = await startPeer(t, { roles: ['archive'] })
  const b = await startPeer(t, { roles: ['archive'], bootstrap: [a] })
  const c = await startPeer(t, { roles: ['archive'], bootstrap: [a, b] })
  const producer = await startPeer(t, { roles: ['gateway'], bootstrap: [a, b, c], sink: true })
  await connectedAll([a, b, c])
  await eventually(() => producer.mesh.libp2p().getConnections().length >= 3)
  const archives = [a, b, c].map((p) => p.archive as Archive)

  const data = receipts('spread', 300)
  for (const d of data) producer.sink?.push('receipt', d)
  await producer.sink?.flush()
  const hashes = data.map(sha256Hex)
  // Wait for two sync rounds after the push: no archive fetches what it is not a holder of.
  await new Promise((resolve) => setTimeout(resolve, 3 * SYNC_INTERVAL_MS))
  for (const h of hashes) {
    const holders = archives[0].holders(h)
    t.is(holders.length, 2)
    const having = []
    for (const [i, ar] of archives.entries()) if (await ar.log.has(h)) having.push([a, b, c][i].identity.nodeId)
    t.deepEqual(having.sort(), [...holders].sort())
  }
  t.like(producer.sink?.stats(), { sent: 300, failed: 0 })
  const cHeld = await held(archives[2], hashes)
  t.true(cHeld > 0 && cHeld < 300)

  await c.stop()
  await eventually(async () => await held(archives[0], hashes) === 300 && await held(archives[1], hashes) === 300, 30_000)
  t.is(archives[0].liveArchives().length, 2)
})

test('attestations heard and certificates pushed are kept, with the receipts they carry; peers outside the roster are denied', async (t) => {
  const a = await startPeer(t, { roles: ['archive'] })
  // Starting again is a no-op (no second handler, no second timer).
  await (a.archive as Archive).start()
  const validator = await startPeer(t, { roles: ['validator'], bootstrap: [a] })
  const attestation = {
    receiptHash: sha256(Buffer.from('some receipt')), jobId: 'job-g', workerId: worker.nodeId, validatorId: validator.identity.nodeId,
    verdict: 'agree', method: 'signature', outputHash: new Uint8Array(), reason: '', atMs: Date.now()
  }
  // Published until the archive's subscription has reached the validator (gossip has no delivery receipt).
  const kept = await eventually(async () => {
    await validator.mesh.publish('attestations', { ...attestation, atMs: Date.now() }).catch(() => {})
    const page = await (a.archive as Archive).listRecords({ jobId: 'job-g', nodeId: '', sinceMs: 0, untilMs: 0, kind: 'attestation', pageSize: 0, pageToken: '' })
    return page.records.length > 0 ? page.records : undefined
  })
  t.deepEqual(kept[0].record?.nodeIds, [validator.identity.nodeId, worker.nodeId])

  // A certificate pushed by a roster member: kept, and the receipt it carries with it.
  const { cert, receiptData } = certificateFor('job-c')
  const pushed = await pushTo(validator.mesh.libp2p(), ARCHIVE_SYNC_PROTOCOL, a.identity.nodeId, [{ kind: 'certificate', data: cert }])
  t.deepEqual(pushed.refused, [])
  t.true(pushed.stored >= 2)
  t.deepEqual((await (a.archive as Archive).getCertificate({ jobId: 'job-c' })).record?.data, cert)
  t.deepEqual((await (a.archive as Archive).getReceipt({ jobId: 'job-c' })).record?.data, receiptData)
  // A forged one is refused, with its hash and why.
  const forged = Uint8Array.from(cert)
  forged[forged.length - 1] ^= 1
  const refused = await pushTo(validator.mesh.libp2p(), ARCHIVE_SYNC_PROTOCOL, a.identity.nodeId, [{ kind: 'certificate', data: forged }])
  t.is(refused.refused[0]?.hash, sha256Hex(forged))
  t.is(refused.refused[0]?.code, 'INVALID_RECORD:INVALID_SIGNATURE')

  // A validator may push, but not read an archive (outputs are clients' data).
  const read = await t.throwsAsync(listFrom(validator.mesh.libp2p(), ARCHIVE_SYNC_PROTOCOL, a.identity.nodeId, { sinceMs: 0, afterHash: '', limit: 10 }))
  t.is((read as { code?: string }).code, 'SYNC_DENIED')

  const stranger = await startPeer(t, { roles: [], bootstrap: [a], sink: true })
  t.context.roles.delete(stranger.identity.nodeId)
  await eventually(() => stranger.mesh.libp2p().getConnections().length > 0)
  const err = await t.throwsAsync(pushTo(stranger.mesh.libp2p(), ARCHIVE_SYNC_PROTOCOL, a.identity.nodeId, [{ kind: 'receipt', data: receiptOf('x') }]))
  t.is((err as { code?: string }).code, 'SYNC_DENIED')
  t.false(await (a.archive as Archive).log.has(sha256Hex(receiptOf('x'))))
  // Its sink counts what no archive took; a job pushing it never waits or fails.
  stranger.sink?.push('receipt', receiptOf('y'))
  await stranger.sink?.flush()
  t.like(stranger.sink?.stats(), { sent: 0, failed: 1, queued: 0 })
  t.false(await (a.archive as Archive).log.has(sha256Hex(receiptOf('y'))))
  // Stopping twice is a no-op; a stopped archive's log refuses use.
  await (a.archive as Archive).stop()
  await (a.archive as Archive).stop()
  await t.throwsAsync((a.archive as Archive).getReceipt({ jobId: 'job-c' }), { code: 'RECORD_LOG_NOT_STARTED' })
})

test.serial('catch-up speed between two nodes (measured alone, not asserted)', async (t) => {
  const a = await startPeer(t, { roles: ['archive'], archive: false })
  const b = await startPeer(t, { roles: ['archive'], archive: false, bootstrap: [a] })
  const make = (p: Peer): { log: RecordLog, sync: RecordSync, pool: VerifyPool } => {
    const pool = verifyPool()({ logger: silentLogger() })
    const log = recordLog({ name: 'bench', verify: verifyArchiveRecord, verifyBatch: pool.verify })({ store: p.store, logger: silentLogger() })
    const sync = recordSync({ protocol: ARCHIVE_SYNC_PROTOCOL })({ mesh: p.mesh, log, logger: silentLogger(), authorize: () => true })
    p.parts.push(pool, log, sync)
    return { log, sync, pool }
  }
  const src = make(a)
  const dst = make(b)
  for (const part of [src.pool, src.log, src.sync, dst.pool, dst.log, dst.sync]) await part.start()
  const n = 10_000
  const data = receipts('bench', n)
  for (let i = 0; i < n; i += 1000) await src.log.put(data.slice(i, i + 1000).map((d) => ({ kind: 'receipt', data: d })))
  t.is(src.log.count(), n)
  await eventually(() => b.mesh.libp2p().getConnections().length > 0)

  const started = process.hrtime.bigint()
  const result = await dst.sync.catchUp(a.identity.nodeId)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  t.is(result.fetched, n)
  t.is(result.listed, n)
  t.is(dst.log.count(), n)
  t.log(`catch-up of ${n} receipts: ${seconds.toFixed(2)} s, ${Math.round(n / seconds)} receipts/s`)

  // A second pass lists again only from the saved position (less the overlap) and fetches nothing.
  const again = await dst.sync.catchUp(a.identity.nodeId)
  t.is(again.fetched, 0)
  t.is(again.held, again.listed)
})
