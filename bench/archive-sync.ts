/**
 * Archive catch-up, measured: two record logs on real LevelDBs, each served by recordSync on a real
 * libp2p mesh node on 127.0.0.1 (both in this process, as test/integration/archive.test.ts builds
 * them), configured as the archive configures its own (verifyArchiveRecord, and a verify pool of
 * threads for batches). The first is filled with R signed receipts; the second, empty, catches up
 * from it, and then once more when there is nothing new.
 *
 * The baseline of the same run is the first log's own put() of the same records, in batches of the
 * catch-up's fetch size: verify + LevelDB insert with no network, so sync rate / put rate is what the
 * protocol costs on top of storing.
 */
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { mkdtemp, rm } from 'node:fs/promises'
import path from 'node:path'
import { admission } from '../src/admission/index.ts'
import { MAX_VERIFY_THREADS, verifyArchiveRecord, verifyPool, type VerifyPool } from '../src/archive/index.ts'
import type { Role } from '../src/config/types.ts'
import { defaultConfig } from '../src/config/index.ts'
import { identityFromSeed } from '../src/identity/index.ts'
import type { Identity } from '../src/identity/types.ts'
import { mesh, type Mesh } from '../src/mesh/index.ts'
import { ARCHIVE_SYNC_PROTOCOL } from '../src/protocol/index.ts'
import { CATCH_UP_OVERLAP_MS, DEFAULT_SYNC_BATCH, recordLog, recordSync, type RecordLog, type RecordSync } from '../src/records/index.ts'
import { levelStore } from '../src/store/index.ts'
import type { JobStore } from '../src/store/types.ts'
import { silentLogger } from '../src/telemetry/logger.ts'
import { signedReceipt } from '../test/helpers/receipts.ts'
import type { Startable } from '../src/types.ts'
import { until } from './reassign.ts'
import type { BenchContext } from './run.ts'

/** Distinct workers signing the receipts (the scheduler is one): index keys spread as on a mesh. */
const WORKERS = 8
const LOG_NAME = 'archive'

/** One round: fresh logs on both nodes, the first filled by put(), the second caught up from it, twice. */
export interface ArchiveSyncRound {
  /** The first log's own put of the records, in batches of the catch-up's fetch size. */
  putSeconds: number
  putPerSecond: number
  /** The second log's catch-up from empty. */
  catchUpSeconds: number
  catchUpPerSecond: number
  listed: number
  fetched: number
  held: number
  /** A second catch-up that finds nothing new. */
  again: { ms: number, listed: number, fetched: number, held: number }
}

export interface ArchiveSyncResult {
  records: number
  /** Receipt signing (setup, not timed against anything): receipts/s on this thread. */
  signPerSecond: number
  putBatch: number
  rounds: ArchiveSyncRound[]
  /** The round with the median catch-up rate: the row's numbers. */
  median: ArchiveSyncRound
  /** median.catchUpPerSecond / median of the rounds' put rates. */
  ratio: number
  putPerSecondMedian: number
  verifyThreads: number
}

interface Side {
  identity: Identity
  store: JobStore
  mesh: Mesh
  pool: VerifyPool
  parts: Startable[]
}

/** A mesh node (libp2p on 127.0.0.1, the mesh's defaults) with a LevelDB and a verify pool as the archive has. */
async function side (dir: string, roles: Map<string, Role[]>, bootstrap?: Side): Promise<Side> {
  const identity = identityFromSeed(randomBytes(32))
  roles.set(identity.nodeId, ['archive'])
  const logger = silentLogger()
  const adm = admission({ mode: 'private', trustedSchedulers: [] })({ roster: { rolesOf: (id) => roles.get(id) ?? [] } })
  const store = levelStore({ path: path.join(dir, 'store'), maxResults: 10 })({ logger })
  const boot = bootstrap?.mesh.addresses().find((a) => a.includes('/p2p/') && a.includes('127.0.0.1'))
  const m = mesh({
    config: { ...defaultConfig().mesh, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: boot !== undefined ? [boot] : [] },
    roles: ['archive'],
    containers: [],
    hearsHeartbeats: false
  })({
    identity,
    logger,
    heartbeat: () => ({ cpuCores: 2, memoryBytes: 1 << 30, gpus: 0, grpcAddress: '', freeSlots: 0, stats: null, rosterVersion: 0 }),
    content: async () => undefined,
    authorize: (topic, author) => adm.mayPublish(topic, author)
  })
  const pool = verifyPool()({ logger })
  const parts: Startable[] = [store, m, pool]
  for (const p of parts) await p.start()
  return { identity, store, mesh: m, pool, parts }
}

/** A record log named `name` on the side's LevelDB, configured as the archive's, served by recordSync. */
async function logOn (s: Side, name: string, roles: Map<string, Role[]>): Promise<{ log: RecordLog, sync: RecordSync, stop: () => Promise<void> }> {
  const logger = silentLogger()
  const log = recordLog({ name, verify: verifyArchiveRecord, verifyBatch: s.pool.verify })({ store: s.store, logger })
  const sync = recordSync({ protocol: ARCHIVE_SYNC_PROTOCOL })({ mesh: s.mesh, log, logger, authorize: (peer) => (roles.get(peer) ?? []).length > 0 })
  await log.start()
  await sync.start()
  return { log, sync, stop: async () => { await sync.stop(); await log.stop() } }
}

/** R receipts as workers sign them: each a distinct job, a real ed25519 envelope, encoded as the archive stores it. */
function receipts (n: number): Uint8Array[] {
  const workers = Array.from({ length: WORKERS }, () => identityFromSeed(randomBytes(32)))
  const scheduler = identityFromSeed(randomBytes(32))
  const now = Date.now()
  return Array.from({ length: n }, (_, i) => signedReceipt(workers[i % WORKERS]!, scheduler, `bench-${i}-${randomBytes(4).toString('hex')}`, { container: 'echo-warm', startedAtMs: now + i }))
}

export async function benchArchiveSync (ctx: BenchContext, opts: { records: number, rounds: number }): Promise<ArchiveSyncResult> {
  process.stderr.write(`bench: archive catch-up of ${opts.records} receipts between two mesh nodes vs the first log's own put, ${opts.rounds} rounds\n`)
  const dir = await mkdtemp(path.join(ctx.tmp, 'archive-sync-'))
  const roles = new Map<string, Role[]>()
  const sides: Side[] = []
  try {
    const a = await side(path.join(dir, 'a'), roles)
    sides.push(a)
    const b = await side(path.join(dir, 'b'), roles, a)
    sides.push(b)
    await until('the two mesh nodes did not connect', 30_000, () => b.mesh.libp2p().getConnections(a.mesh.libp2p().peerId).length > 0 ? true : undefined, 50)

    const batch = DEFAULT_SYNC_BATCH
    const rounds: ArchiveSyncRound[] = []
    let signSeconds = 0
    for (let k = 0; k < opts.rounds; k++) {
      // New receipts and new logs each round: nothing is held already, on either side.
      const s0 = performance.now()
      const data = receipts(opts.records)
      signSeconds += (performance.now() - s0) / 1000
      const src = await logOn(a, `${LOG_NAME}-${k}`, roles)
      const dst = await logOn(b, `${LOG_NAME}-${k}`, roles)
      try {
        // Baseline: the first log stores them itself, in batches of what one catch-up fetch brings.
        const p0 = performance.now()
        for (let i = 0; i < data.length; i += batch) {
          const res = await src.log.put(data.slice(i, i + batch).map((d) => ({ kind: 'receipt', data: d })))
          if (res.refused.length > 0) throw new Error(`the first log refused ${res.refused.length} receipts, e.g. ${res.refused[0]!.code}: ${res.refused[0]!.reason}`)
        }
        const putSeconds = (performance.now() - p0) / 1000
        if (src.log.count() !== opts.records) throw new Error(`the first log holds ${src.log.count()} of ${opts.records}`)

        const c0 = performance.now()
        const caught = await dst.sync.catchUp(a.identity.nodeId)
        const catchUpSeconds = (performance.now() - c0) / 1000
        if (dst.log.count() !== opts.records || caught.fetched !== opts.records) throw new Error(`catch-up fetched ${caught.fetched} and the second log holds ${dst.log.count()} of ${opts.records}`)

        const g0 = performance.now()
        const again = await dst.sync.catchUp(a.identity.nodeId)
        const againMs = performance.now() - g0
        if (again.fetched !== 0) throw new Error(`the second catch-up fetched ${again.fetched} records; nothing was new`)
        rounds.push({
          putSeconds, putPerSecond: opts.records / putSeconds,
          catchUpSeconds, catchUpPerSecond: opts.records / catchUpSeconds,
          listed: caught.listed, fetched: caught.fetched, held: caught.held,
          again: { ms: againMs, listed: again.listed, fetched: again.fetched, held: again.held }
        })
      } finally {
        await dst.stop()
        await src.stop()
      }
    }
    const byRate = [...rounds].sort((x, y) => x.catchUpPerSecond - y.catchUpPerSecond)
    const median = byRate[Math.floor((byRate.length - 1) / 2)]!
    const puts = rounds.map((r) => r.putPerSecond).sort((x, y) => x - y)
    const putPerSecondMedian = puts[Math.floor((puts.length - 1) / 2)]!
    return {
      records: opts.records,
      signPerSecond: opts.records * opts.rounds / signSeconds,
      putBatch: batch,
      rounds,
      median,
      ratio: median.catchUpPerSecond / putPerSecondMedian,
      putPerSecondMedian,
      verifyThreads: Math.max(1, Math.min(MAX_VERIFY_THREADS, availableParallelism() - 1))
    }
  } finally {
    for (const s of sides.reverse()) for (const p of [...s.parts].reverse()) await p.stop().catch(() => {})
    await rm(dir, { recursive: true, force: true })
  }
}

/** Target: a catch-up moves at least this many receipts per second. */
export const ARCHIVE_SYNC_TARGET = 5_000

export function archiveSyncMet (r: ArchiveSyncResult): boolean {
  return r.median.catchUpPerSecond >= ARCHIVE_SYNC_TARGET
}

export function renderArchiveSync (r: ArchiveSyncResult): string {
  const m = r.median
  const range = (v: number[]): string => `${Math.min(...v).toFixed(0)}-${Math.max(...v).toFixed(0)}`
  return `| archive catch-up of ${r.records} signed receipts from empty, two mesh nodes on 127.0.0.1, real LevelDBs, median of ${r.rounds.length} rounds | ${m.catchUpPerSecond.toFixed(0)} receipts/s (${m.catchUpSeconds.toFixed(2)} s; rounds ${range(r.rounds.map((x) => x.catchUpPerSecond))}/s); nothing new: ${m.again.ms.toFixed(0)} ms (${m.again.listed} listed again, ${m.again.fetched} fetched; rounds ${range(r.rounds.map((x) => x.again.ms))} ms) | the first log's own put (verify + insert, batches of ${r.putBatch}): ${r.putPerSecondMedian.toFixed(0)} receipts/s (rounds ${range(r.rounds.map((x) => x.putPerSecond))}/s) | ${r.ratio.toFixed(2)} | >= ${ARCHIVE_SYNC_TARGET}/s ${archiveSyncMet(r) ? 'met' : 'NOT met'} (${m.catchUpPerSecond.toFixed(0)}/s) |`
}

export function archiveSyncNote (r: ArchiveSyncResult): string {
  return `Archive sync: both logs are configured as the archive configures its own (verifyArchiveRecord; batches verified on a pool of ${r.verifyThreads} thread(s) per node, the cores but one), each a section of its own node's LevelDB, each served by recordSync (${ARCHIVE_SYNC_PROTOCOL}) on a mesh node of this process (TCP, Noise, Yamux on 127.0.0.1), so the catch-up's lister, fetcher, server and both verify pools share the machine's 2 cores. ` +
    `Each round uses new receipts and new logs on the same two nodes, puts them into the first log (timed: the baseline), then catches the empty second log up from it (timed), then catches up again. Rounds (put/s, catch-up/s, again ms): ${r.rounds.map((x) => `${x.putPerSecond.toFixed(0)}, ${x.catchUpPerSecond.toFixed(0)}, ${x.again.ms.toFixed(0)}`).join('; ')}. ` +
    `Every fetched receipt is verified (signature, strict decode, signer = worker) before it is stored; each catch-up listed and fetched all ${r.records} and found none held. The receipts are real ed25519 envelopes of ${WORKERS} workers (signed at ${r.signPerSecond.toFixed(0)}/s beforehand, not timed). ` +
    `The second catch-up starts from the position saved by the first, stepped back ${CATCH_UP_OVERLAP_MS / 1000} s, so it lists again whatever the first log stored in its last ${CATCH_UP_OVERLAP_MS / 1000} s (in the median round ${r.median.again.listed} of the ${r.records}) and fetches none of it.`
}
