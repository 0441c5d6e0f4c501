/**
 * A record log's sync protocol (docs/ARCHIVE.md, "The sync protocol"): serves list, fetch and store
 * requests from authorized peers, and catches up from a peer by listing what it stored since the
 * last position kept for it and fetching only what this log lacks. The protocol id is given, so one
 * implementation serves archives (/inframind/archive-sync/1.0.0) and coordinators' subscription
 * events (/inframind/subscription-sync/1.0.0).
 */
import type { IncomingStreamData } from '@libp2p/interface'
import { lpStream } from 'it-length-prefixed-stream'
import type { Mesh } from '../mesh/index.ts'
import { KeyedRateLimiter } from '../mesh/limits.ts'
import type { MeshLibp2p } from '../mesh/libp2p.ts'
import {
  decodeSyncRequest, encodeSyncResponse, type StoredRecord, type SyncFetch, type SyncList, type SyncResponse, type SyncStore
} from '../protocol/index.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { Startable } from '../types.ts'
import { fetchFrom, formatRefusal, listFrom, pushTo, type FetchedRecord, type PushResult, type SyncPage } from './client.ts'
import {
  CATCH_UP_FETCHES_IN_FLIGHT, CATCH_UP_OVERLAP_MS, DEFAULT_LIST_LIMIT, DEFAULT_SYNC_BATCH, MAX_LIST_LIMIT, MAX_SYNC_BATCH,
  MAX_SYNC_REQUEST_BYTES, MAX_SYNC_RESPONSE_BYTES, MAX_SYNC_TRACKED_PEERS, SYNC_MAX_INBOUND_STREAMS, SYNC_PER_PEER_BURST,
  SYNC_PER_PEER_PER_SECOND, SYNC_TIMEOUT_MS
} from './constants.ts'
import { SyncError } from './errors.ts'
import type { LogEntry, RecordInput, RecordLog } from './log.ts'
import { recordMetrics } from './metrics.ts'

export interface RecordSyncInit {
  /** The protocol id served and dialled. */
  protocol: string
  /** Records per fetch request of a catch-up (default DEFAULT_SYNC_BATCH, at most MAX_SYNC_BATCH). */
  batch?: number
  /**
   * What a pushed record is stored as: itself and any records it carries (an archive keeps a
   * certificate's receipt and attestations too). Default: the record alone.
   */
  expand?: (record: RecordInput) => RecordInput[]
}

export interface RecordSyncComponents {
  mesh: Pick<Mesh, 'libp2p'>
  log: RecordLog
  logger: Logger
  metrics?: Metrics
  /** May this peer (node id, as authenticated by the connection) use the protocol at all? Others get DENIED. */
  authorize: (peerId: string) => boolean
  /** May it also list and fetch (read what this log holds)? Default: whoever is authorized. */
  authorizeRead?: (peerId: string) => boolean
}

export interface CatchUpOptions {
  /** Entries to fetch (default all); the others are counted as skipped. */
  want?: (entry: LogEntry) => boolean
  /** List the peer from the start instead of from the position kept for it (e.g. the holders changed). */
  restart?: boolean
  signal?: AbortSignal
}

export interface CatchUpResult {
  /** Entries the peer listed. */
  listed: number
  /** Records fetched and stored. */
  fetched: number
  /** Entries not wanted. */
  skipped: number
  /** Entries this log held already. */
  held: number
}

export interface RecordSync extends Startable {
  readonly protocol: string
  list(peer: string, opts?: { sinceMs?: number, afterHash?: string, limit?: number }, signal?: AbortSignal): Promise<SyncPage>
  /** The records among `hashes` (hex) the peer holds, each hashing to one asked for (not yet verified: put() does). */
  fetch(peer: string, hashes: string[], signal?: AbortSignal): Promise<FetchedRecord[]>
  push(peer: string, records: RecordInput[], signal?: AbortSignal): Promise<PushResult>
  catchUp(peer: string, opts?: CatchUpOptions): Promise<CatchUpResult>
}

const ok = (fields: Partial<SyncResponse> = {}): SyncResponse =>
  ({ status: 'OK', error: '', entries: [], more: false, records: [], stored: 0, refused: [], ...fields })
const fail = (status: 'ERROR' | 'DENIED' | 'RATE_LIMITED', error: string): SyncResponse => ({ ...ok(), status, error })

/** Bytes a StoredRecord adds to a response, a little over (tags, lengths, index fields). */
const recordSize = (r: StoredRecord): number => r.data.byteLength + r.kind.length + r.jobId.length + r.nodeIds.reduce((n, id) => n + id.length + 4, 0) + 64

export function recordSync (init: RecordSyncInit) {
  return (components: RecordSyncComponents): RecordSync => {
    const { protocol } = init
    const batch = Math.min(Math.max(1, init.batch ?? DEFAULT_SYNC_BATCH), MAX_SYNC_BATCH)
    const { log, authorize } = components
    const logger = components.logger.child({ component: 'record-sync', protocol })
    const metrics = recordMetrics(components.metrics)
    const limiter = new KeyedRateLimiter({ perSecond: SYNC_PER_PEER_PER_SECOND, burst: SYNC_PER_PEER_BURST, maxKeys: MAX_SYNC_TRACKED_PEERS })

    let node: MeshLibp2p | undefined
    let stopping = new AbortController()
    const inFlight = new Set<Promise<unknown>>()
    const track = <T>(p: Promise<T>): Promise<T> => {
      inFlight.add(p)
      void p.finally(() => inFlight.delete(p)).catch(() => {})
      return p
    }
    const started = (peer: string): MeshLibp2p => {
      if (node === undefined) throw new SyncError('SYNC_NOT_STARTED', peer, 'record sync is not started')
      return node
    }
    const signalFor = (signal?: AbortSignal): AbortSignal => AbortSignal.any([stopping.signal, ...(signal !== undefined ? [signal] : [])])

    const answerList = async (req: SyncList): Promise<SyncResponse> => {
      if (req.afterHash.byteLength !== 0 && req.afterHash.byteLength !== 32) return fail('ERROR', 'list.after_hash must be empty or 32 bytes')
      const limit = req.limit === 0 ? DEFAULT_LIST_LIMIT : Math.min(req.limit, MAX_LIST_LIMIT)
      const page = await log.list({ sinceMs: req.sinceMs, afterHash: Buffer.from(req.afterHash).toString('hex'), limit })
      return ok({ entries: page.entries.map((e) => ({ hash: Buffer.from(e.hash, 'hex'), storedAtMs: e.storedAtMs, kind: e.kind })), more: page.more })
    }

    const answerFetch = async (req: SyncFetch): Promise<SyncResponse> => {
      if (req.hashes.length > MAX_SYNC_BATCH) return fail('ERROR', `fetch of ${req.hashes.length} hashes; at most ${MAX_SYNC_BATCH} per request`)
      if (req.hashes.some((h) => h.byteLength !== 32)) return fail('ERROR', 'every fetch hash must be 32 bytes (sha256)')
      const records: StoredRecord[] = []
      let size = 0
      // Each read checks the data against its hash: a record corrupted on this disk is reported and
      // never served. Signatures are left to the asker, which verifies everything before storing it.
      const found = await log.readMany(req.hashes.map((h) => Buffer.from(h).toString('hex')), { check: 'hash' })
      for (const got of found) {
        if (got.status !== 'ok') continue
        const r = got.record
        const stored: StoredRecord = { kind: r.kind, data: r.data, storedAtMs: r.storedAtMs, jobId: r.jobId, nodeIds: r.nodeIds }
        const n = recordSize(stored)
        // The asker sees which are missing and asks again for them.
        if (size + n > MAX_SYNC_RESPONSE_BYTES - 1024) break
        size += n
        records.push(stored)
      }
      return ok({ records })
    }

    const answerStore = async (req: SyncStore): Promise<SyncResponse> => {
      if (req.records.length > MAX_SYNC_BATCH) return fail('ERROR', `store of ${req.records.length} records; at most ${MAX_SYNC_BATCH} per request`)
      // stored_at and index fields from a peer are ignored: the log sets and derives its own.
      const given = req.records.map((r) => ({ kind: r.kind, data: r.data }))
      const result = await log.put(init.expand !== undefined ? given.flatMap(init.expand) : given)
      return ok({ stored: result.stored, refused: result.refused.map(formatRefusal) })
    }

    const serve = ({ stream, connection }: IncomingStreamData): void => {
      const peer = connection.remotePeer.toString()
      const signal = AbortSignal.any([AbortSignal.timeout(SYNC_TIMEOUT_MS), stopping.signal])
      const lp = lpStream(stream, { maxDataLength: MAX_SYNC_REQUEST_BYTES })
      track((async () => {
        try {
          const raw = (await lp.read({ signal })).subarray()
          let response: SyncResponse
          if (!authorize(peer)) {
            response = fail('DENIED', 'this node does not sync records with peers outside its roster')
          } else if (!limiter.take(peer)) {
            response = fail('RATE_LIMITED', `over ${SYNC_PER_PEER_PER_SECOND} requests/s from this peer; slow down`)
          } else {
            let req
            try {
              req = decodeSyncRequest(raw)
            } catch (err) {
              req = undefined
              response = fail('ERROR', (err as Error).message)
            }
            const reads = req?.list != null || req?.fetch != null
            if (reads && !(components.authorizeRead ?? authorize)(peer)) response = fail('DENIED', 'this node lets only its fellow record holders list and fetch')
            else if (req?.list != null) response = await answerList(req.list)
            else if (req?.fetch != null) response = await answerFetch(req.fetch)
            else if (req?.store != null) response = await answerStore(req.store)
            response ??= fail('ERROR', 'empty request')
          }
          await lp.write(encodeSyncResponse(response), { signal })
          await stream.close({ signal })
        } catch (err) {
          logger.debug({ peer, err: (err as Error).message }, 'record sync request not answered')
          stream.abort(err as Error)
        }
      })())
    }

    const fetch = async (peer: string, hashes: string[], signal?: AbortSignal): Promise<FetchedRecord[]> =>
      await fetchFrom(started(peer), protocol, peer, hashes, signalFor(signal))

    /** Fetches `hashes` from the peer and stores them, asking again for what a full response left out. */
    const fetchAndStore = async (peer: string, hashes: string[], signal: AbortSignal): Promise<number> => {
      let remaining = hashes
      let stored = 0
      while (remaining.length > 0) {
        const records = await fetch(peer, remaining, signal)
        // Nothing more: the peer no longer holds the rest (evicted, or found corrupt on its disk).
        if (records.length === 0) break
        const result = await log.put(records.map((r) => ({ kind: r.kind, data: r.data })))
        stored += result.stored
        if (result.refused.length > 0) logger.warn({ peer, refused: result.refused.length, first: result.refused[0] }, 'a peer sent records that do not verify')
        const returned = new Set(records.map((r) => r.hash))
        remaining = remaining.filter((h) => !returned.has(h))
      }
      return stored
    }

    const catchUp = async (peer: string, opts: CatchUpOptions = {}): Promise<CatchUpResult> => {
      started(peer)
      const signal = signalFor(opts.signal)
      const want = opts.want ?? (() => true)
      const saved = opts.restart === true ? undefined : await log.cursor(peer)
      let sinceMs = saved?.sinceMs ?? 0
      let afterHash = saved?.afterHash ?? ''
      const result: CatchUpResult = { listed: 0, fetched: 0, skipped: 0, held: 0 }
      const fetching = new Set<Promise<void>>()
      let failure: unknown
      const startFetch = (hashes: string[]): void => {
        const p = fetchAndStore(peer, hashes, signal).then((n) => {
          result.fetched += n
          if (n > 0) metrics.synced?.inc({ log: log.name }, n)
        }, (err: unknown) => { failure ??= err })
        fetching.add(p)
        void p.finally(() => fetching.delete(p))
      }
      let lastStoredAtMs: number | undefined
      for (;;) {
        const page = await listFrom(started(peer), protocol, peer, { sinceMs, afterHash, limit: DEFAULT_LIST_LIMIT }, signal)
        result.listed += page.entries.length
        const wanted: string[] = []
        for (const e of page.entries) {
          if (want(e)) wanted.push(e.hash)
          else result.skipped++
        }
        const held = await log.hasMany(wanted)
        const missing = wanted.filter((_, i) => !held[i])
        result.held += wanted.length - missing.length
        for (let i = 0; i < missing.length; i += batch) {
          while (fetching.size >= CATCH_UP_FETCHES_IN_FLIGHT) await Promise.race(fetching)
          if (failure !== undefined) break
          startFetch(missing.slice(i, i + batch))
        }
        if (failure !== undefined) break
        const last = page.entries.at(-1)
        if (last !== undefined) {
          sinceMs = last.storedAtMs
          afterHash = last.hash
          lastStoredAtMs = last.storedAtMs
        }
        if (!page.more || last === undefined) break
      }
      await Promise.all(fetching)
      if (failure !== undefined) throw failure
      // Only a complete pass moves the position; it is stepped back so records stored at the same
      // moment as the last one seen (or under a clock stepped back a little) are listed again.
      if (lastStoredAtMs !== undefined) await log.saveCursor(peer, { sinceMs: Math.max(0, lastStoredAtMs - CATCH_UP_OVERLAP_MS), afterHash: '' })
      return result
    }

    return {
      protocol,
      list: async (peer, opts = {}, signal) => await listFrom(started(peer), protocol, peer, {
        sinceMs: opts.sinceMs ?? 0, afterHash: opts.afterHash ?? '', limit: opts.limit ?? DEFAULT_LIST_LIMIT
      }, signalFor(signal)),
      fetch,
      push: async (peer, records, signal) => await pushTo(started(peer), protocol, peer, records, signalFor(signal)),
      catchUp: async (peer, opts) => await track(catchUp(peer, opts)),
      async start () {
        if (node !== undefined) return
        const n = components.mesh.libp2p()
        stopping = new AbortController()
        await n.handle(protocol, serve, { runOnLimitedConnection: true, maxInboundStreams: SYNC_MAX_INBOUND_STREAMS })
        node = n
      },
      async stop () {
        const n = node
        if (n === undefined) return
        node = undefined
        stopping.abort(new Error('record sync stopping'))
        await n.unhandle(protocol).catch(() => {})
        await Promise.allSettled([...inFlight])
      }
    }
  }
}
