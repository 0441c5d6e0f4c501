/**
 * The archive role (docs/ARCHIVE.md): keeps the receipts, attestations, certificates, dispute
 * records and lazy outputs it hears or is pushed, each verified before it is stored and again when
 * read; replicates them so each is held by `replicas` live archives (rendezvous over its hash); and
 * answers the API's reads, repairing a record found corrupt from another archive before serving it.
 */
import type { Role } from '../config/types.ts'
import type { Mesh } from '../mesh/index.ts'
import { encodeEnvelope } from '../envelope/index.ts'
import type { ListRecordsRequest, ListRecordsResponse, RecordReply } from '../protocol/index.ts'
import { ARCHIVE_SYNC_PROTOCOL } from '../protocol/index.ts'
import {
  recordLog, recordSync, type LoggedRecord, type PutResult, type RecordInput, type RecordLog, type RecordSync, type RetentionInit
} from '../records/index.ts'
import type { JobStore } from '../store/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { Startable } from '../types.ts'
import { TypedEmitter } from '../events.ts'
import {
  ARCHIVE_LOG_NAME, DEFAULT_REPLICAS, DEFAULT_SYNC_INTERVAL_MS, DISCOVER_INTERVAL_MS, KEEP_BATCH, KEEP_FLUSH_MS, MAX_KEEP_QUEUE
} from './constants.ts'
import { InvalidRecordRequestError, RecordNotFoundError } from './errors.ts'
import { connectedArchives, discoverArchives, holdersOf, isArchive, type ArchiveAdmission } from './live.ts'
import { verifyArchiveRecord, withEmbedded } from './verify.ts'
import { verifyPool } from './verify-pool.ts'

export * from './errors.ts'
export * from './constants.ts'
export { ARCHIVE_KINDS, verifyArchiveRecord, withEmbedded, type ArchiveKind } from './verify.ts'
export { connectedArchives, discoverArchives, holdersOf } from './live.ts'
export { verifyPool, type VerifyPool, type VerifyPoolInit } from './verify-pool.ts'
export { archiveSink, type ArchiveSink, type ArchiveSinkInit, type ArchiveSinkComponents, type SinkStats } from './sink.ts'

export interface ArchiveInit {
  /** Archives that hold each record (default DEFAULT_REPLICAS). */
  replicas?: number
  /** Catch-up from each other live archive this often (default DEFAULT_SYNC_INTERVAL_MS). */
  syncIntervalMs?: number
  retention?: RetentionInit
  /** Records per fetch request of a catch-up. */
  batch?: number
  /** Threads verifying records in batches (default: the cores but one). */
  verifyThreads?: number
}

export interface ArchiveComponents {
  mesh: Pick<Mesh, 'libp2p' | 'nodeId' | 'findProviders' | 'subscribe'>
  /** Who holds which role: only roster members may push or sync, only roster archives are replicas. */
  admission: ArchiveAdmission
  store: Pick<JobStore, 'section'>
  logger: Logger
  metrics?: Metrics
}

/** A record lookup: by job id (the newest of the kind for it) or by record hash (hex). */
export interface RecordLookup {
  jobId?: string
  hash?: string
}

export interface SyncRound {
  /** Archives caught up from. */
  peers: number
  fetched: number
  failed: number
}

export interface ArchiveEvents {
  /** A record found corrupt was fetched again from another archive (`from`) and stored. */
  repaired: { hash: string, from: string }
  /** A record found corrupt could not be had from any other archive. */
  lost: { hash: string }
  /** A catch-up round ended. */
  synced: SyncRound
}

export interface Archive extends Startable {
  readonly log: RecordLog
  readonly sync: RecordSync
  /** Live archives (roster archives this node is connected to, and itself), sorted. */
  liveArchives(): string[]
  /** The archives that should hold `hash` (hex): rendezvous over the live ones, best first. */
  holders(hash: string): string[]
  /** Verifies and stores records (and the signed records they carry) now. */
  keep(records: RecordInput[]): Promise<PutResult>
  /** Catches up from every other live archive now (the timer does the same every syncIntervalMs). */
  syncNow(): Promise<SyncRound>
  /** Any record by hash: local, else repaired, else from its holders (verified, not stored). */
  getRecord(hash: string): Promise<RecordReply>
  getReceipt(lookup: RecordLookup): Promise<RecordReply>
  getCertificate(lookup: RecordLookup): Promise<RecordReply>
  listRecords(request: ListRecordsRequest): Promise<ListRecordsResponse>
  on<K extends keyof ArchiveEvents>(name: K, listener: (value: ArchiveEvents[K]) => void): () => void
}

const HEX_HASH = /^[0-9a-f]{64}$/
/** Who may list and fetch an archive's records: other archives, and the nodes that assign jobs. */
const READER_ROLES: readonly Role[] = ['archive', 'scheduler', 'gateway']

export function archive (init: ArchiveInit = {}) {
  return (components: ArchiveComponents): Archive => {
    const { mesh, admission } = components
    const replicas = Math.max(1, init.replicas ?? DEFAULT_REPLICAS)
    const syncIntervalMs = init.syncIntervalMs ?? DEFAULT_SYNC_INTERVAL_MS
    const logger = components.logger.child({ component: 'archive' })
    const events = new TypedEmitter<ArchiveEvents>(logger)
    const repairedTotal = components.metrics?.counter({ name: 'inframind_archive_repairs_total', help: 'Records found corrupt on this archive\'s disk, by outcome: repaired (fetched again from another archive) or lost (no archive had a good copy)', labelNames: ['outcome'] })
    const roundsTotal = components.metrics?.counter({ name: 'inframind_archive_catch_ups_total', help: 'Catch-ups from another archive, by outcome (ok, failed)', labelNames: ['outcome'] })

    const pool = verifyPool({ threads: init.verifyThreads })({ logger })
    const log = recordLog({ name: ARCHIVE_LOG_NAME, verify: verifyArchiveRecord, verifyBatch: pool.verify, retention: init.retention })({ store: components.store, logger, metrics: components.metrics })
    const sync = recordSync({ protocol: ARCHIVE_SYNC_PROTOCOL, batch: init.batch, expand: (r) => withEmbedded(r.kind, r.data) })({
      mesh,
      log,
      logger,
      metrics: components.metrics,
      // Any roster member may push; only archives and coordinators read (outputs are clients' data).
      authorize: (peer) => admission.rolesOf(peer).length > 0,
      authorizeRead: (peer) => admission.rolesOf(peer).some((r) => READER_ROLES.includes(r))
    })

    let running = false
    let timer: NodeJS.Timeout | undefined
    let lastDiscoverMs = 0
    let stopping = new AbortController()
    const unsubscribe: Array<() => void> = []
    /** The live set each peer was last caught up from completely under; another set means its skipped entries must be looked at again. */
    const caughtUpUnder = new Map<string, string>()
    const repairs = new Map<string, Promise<LoggedRecord | undefined>>()
    const background = new Set<Promise<unknown>>()
    let round: Promise<SyncRound> | undefined
    let pending: RecordInput[] = []
    let flushTimer: NodeJS.Timeout | undefined

    const track = <T>(p: Promise<T>): Promise<T> => {
      background.add(p)
      void p.finally(() => background.delete(p)).catch(() => {})
      return p
    }

    const liveArchives = (): string[] => [...new Set([mesh.nodeId, ...connectedArchives(mesh, admission)])].sort()
    const holders = (hash: string): string[] => holdersOf(hash, liveArchives(), replicas)

    const keep = async (records: RecordInput[]): Promise<PutResult> => await log.put(records.flatMap((r) => withEmbedded(r.kind, r.data)))

    const flush = (): void => {
      flushTimer = undefined
      if (pending.length === 0) return
      const batch = pending
      pending = []
      track(keep(batch)).catch((err: unknown) => logger.warn({ err, records: batch.length }, 'records heard on the mesh not stored'))
    }
    /** Gossip records are written in batches: one LevelDB batch, not one per message. */
    const enqueue = (kind: string, data: Uint8Array): void => {
      if (!running) return
      if (pending.length >= MAX_KEEP_QUEUE) return
      pending.push({ kind, data })
      if (pending.length >= KEEP_BATCH) flush()
      else flushTimer ??= setTimeout(flush, KEEP_FLUSH_MS)
    }

    /** Fetches a record found corrupt from the other archives, holders first; stores and returns it when it verifies. */
    const repair = async (hash: string): Promise<LoggedRecord | undefined> => {
      const live = liveArchives().filter((id) => id !== mesh.nodeId)
      const order = [...new Set([...holders(hash).filter((id) => id !== mesh.nodeId), ...live])]
      for (const peer of order) {
        if (!running) return undefined
        try {
          const [record] = await sync.fetch(peer, [hash], stopping.signal)
          if (record === undefined) continue
          const put = await log.put([{ kind: record.kind, data: record.data }])
          if (put.refused.length > 0) continue
          const got = await log.get(hash)
          if (got === undefined) continue
          repairedTotal?.inc({ outcome: 'repaired' })
          logger.info({ hash, from: peer }, 'corrupt record repaired from another archive')
          events.emit('repaired', { hash, from: peer })
          return got
        } catch (err) {
          logger.debug({ hash, peer, err: (err as Error).message }, 'repair from this archive failed')
        }
      }
      if (!running) return undefined
      repairedTotal?.inc({ outcome: 'lost' })
      logger.warn({ hash, asked: order.length }, 'corrupt record: no other archive had a good copy')
      events.emit('lost', { hash })
      return undefined
    }
    const repairOnce = (hash: string): Promise<LoggedRecord | undefined> => {
      let p = repairs.get(hash)
      if (p === undefined) {
        p = track(repair(hash)).finally(() => repairs.delete(hash))
        repairs.set(hash, p)
      }
      return p
    }

    /** A verified record by hash; a corrupt one is repaired first; never a record that failed. */
    const readVerified = async (hash: string): Promise<LoggedRecord | undefined> => {
      const r = await log.read(hash)
      if (r.status === 'ok') return r.record
      // The log reported the corruption; the repair it started (or this one) brings a good copy.
      if (r.status === 'corrupt') return await repairOnce(hash)
      return undefined
    }

    const catchUpFrom = async (peer: string, live: string[]): Promise<number> => {
      const self = mesh.nodeId
      const key = live.join(',')
      const result = await sync.catchUp(peer, {
        // Records this archive should hold among the live ones; what it already has is never fetched again.
        want: (e) => holdersOf(e.hash, live, replicas).includes(self),
        restart: caughtUpUnder.get(peer) !== key,
        signal: stopping.signal
      })
      caughtUpUnder.set(peer, key)
      return result.fetched
    }

    const syncRound = async (): Promise<SyncRound> => {
      if (Date.now() - lastDiscoverMs >= DISCOVER_INTERVAL_MS) {
        lastDiscoverMs = Date.now()
        // In the background: a slow DHT lookup never delays a round; archives it finds count from the next one.
        void track(discoverArchives(mesh, admission, stopping.signal).catch((err: unknown) => logger.debug({ err: (err as Error).message }, 'archive discovery failed')))
      }
      const live = liveArchives()
      const out: SyncRound = { peers: 0, fetched: 0, failed: 0 }
      for (const peer of live) {
        if (peer === mesh.nodeId || !running) continue
        try {
          out.fetched += await catchUpFrom(peer, live)
          out.peers++
          roundsTotal?.inc({ outcome: 'ok' })
        } catch (err) {
          out.failed++
          roundsTotal?.inc({ outcome: 'failed' })
          logger.debug({ peer, err: (err as Error).message }, 'catch-up from an archive failed')
        }
      }
      if (out.fetched > 0) logger.info(out, 'caught up from other archives')
      events.emit('synced', out)
      return out
    }
    const syncNow = async (): Promise<SyncRound> => {
      // One round at a time: a call during a round waits for it, then runs its own.
      const previous = round ?? Promise.resolve(undefined)
      const next = previous.catch(() => undefined).then(syncRound)
      round = next
      void next.finally(() => { if (round === next) round = undefined }).catch(() => {})
      return await track(next)
    }

    const reply = (r: LoggedRecord): RecordReply => ({
      record: { kind: r.kind, data: r.data, storedAtMs: r.storedAtMs, jobId: r.jobId, nodeIds: r.nodeIds },
      hash: r.hash,
      archiveId: mesh.nodeId
    })

    const hashArg = (hash: string): string => {
      const h = hash.toLowerCase()
      if (!HEX_HASH.test(h)) throw new InvalidRecordRequestError('hash must be a sha256 in hex (64 digits)')
      return h
    }

    /** From the holders, verified; served, not stored (this archive is not among them, or lost its copy). */
    const fromHolders = async (hash: string): Promise<LoggedRecord | undefined> => {
      for (const peer of holders(hash).filter((id) => id !== mesh.nodeId)) {
        try {
          const [r] = await sync.fetch(peer, [hash], stopping.signal)
          if (r === undefined) continue
          const index = verifyArchiveRecord(r.kind, r.data)
          return { hash, kind: r.kind, data: r.data, storedAtMs: r.storedAtMs, ...index }
        } catch (err) {
          logger.debug({ hash, peer, err: (err as Error).message }, 'record not had from a holder')
        }
      }
      return undefined
    }

    const getRecord = async (hash: string): Promise<RecordReply> => {
      const h = hashArg(hash)
      const r = (await readVerified(h)) ?? (await fromHolders(h))
      if (r === undefined) throw new RecordNotFoundError(`record ${h}`)
      return reply(r)
    }

    /** The newest verified record of `kind` for a job, repairing any found corrupt on the way. */
    const newestOfJob = async (jobId: string, kind: string): Promise<LoggedRecord | undefined> => {
      let newest: LoggedRecord | undefined
      let pageToken = ''
      do {
        const page = await log.query({ jobId, kind, pageSize: 1000, pageToken })
        const repaired = await Promise.all(page.corrupt.map(repairOnce))
        for (const r of [...page.records, ...repaired]) {
          if (r !== undefined && r.kind === kind && r.jobId === jobId && (newest === undefined || r.storedAtMs >= newest.storedAtMs)) newest = r
        }
        pageToken = page.nextPageToken
      } while (pageToken !== '')
      return newest
    }

    const lookup = async (kind: 'receipt' | 'certificate', req: RecordLookup): Promise<RecordReply> => {
      const jobId = req.jobId ?? ''
      const hash = req.hash ?? ''
      if ((jobId === '') === (hash === '')) throw new InvalidRecordRequestError('name either a job_id or a hash (hex sha256 of the record)')
      if (hash !== '') {
        const reply = await getRecord(hash).catch((err: unknown) => {
          if (err instanceof RecordNotFoundError) throw new RecordNotFoundError(`${kind} ${hash.toLowerCase()}`)
          throw err
        })
        if (reply.record?.kind !== kind) throw new RecordNotFoundError(`${kind} ${hash.toLowerCase()}`)
        return reply
      }
      const r = await newestOfJob(jobId, kind)
      if (r === undefined) throw new RecordNotFoundError(`${kind} for job ${jobId.slice(0, 64)}`)
      return reply(r)
    }

    const listRecords = async (req: ListRecordsRequest): Promise<ListRecordsResponse> => {
      const page = await log.query({
        jobId: req.jobId, nodeId: req.nodeId, sinceMs: req.sinceMs, untilMs: req.untilMs, kind: req.kind, pageSize: req.pageSize === 0 ? 100 : req.pageSize, pageToken: req.pageToken
      })
      // Records found corrupt are repaired in the background (stored again, they come back on a later page).
      for (const h of page.corrupt) void repairOnce(h)
      return { records: page.records.map(reply), nextPageToken: page.nextPageToken }
    }

    return {
      log,
      sync,
      liveArchives,
      holders,
      keep,
      syncNow,
      getRecord,
      getReceipt: async (req) => await lookup('receipt', req),
      getCertificate: async (req) => await lookup('certificate', req),
      listRecords,
      on: (name, listener) => events.on(name, listener),
      async start () {
        if (running) return
        if (!isArchive(admission, mesh.nodeId)) logger.warn('this node is not an archive in the roster: other archives will neither sync with it nor count it as a replica')
        stopping = new AbortController()
        await pool.start()
        try {
          await log.start()
          await sync.start()
        } catch (err) {
          await log.stop()
          await pool.stop()
          throw err
        }
        running = true
        unsubscribe.push(log.on('corrupt', ({ hash }) => { void repairOnce(hash) }))
        unsubscribe.push(mesh.subscribe('attestations', (m) => enqueue('attestation', encodeEnvelope(m.envelope))))
        unsubscribe.push(mesh.subscribe('disputes', (m) => enqueue('dispute', encodeEnvelope(m.envelope))))
        const tick = (): void => {
          syncNow().catch((err: unknown) => logger.warn({ err }, 'archive sync round failed')).finally(() => {
            if (running) timer = setTimeout(tick, syncIntervalMs)
          })
        }
        timer = setTimeout(tick, 0)
      },
      async stop () {
        if (!running) return
        running = false
        clearTimeout(timer)
        timer = undefined
        for (const u of unsubscribe.splice(0)) u()
        clearTimeout(flushTimer)
        flush()
        stopping.abort(new Error('archive stopping'))
        await Promise.allSettled([...background])
        await sync.stop()
        await log.stop()
        await pool.stop()
        caughtUpUnder.clear()
      }
    }
  }
}
