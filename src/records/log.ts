/**
 * A content-addressed record log in one section of the node's LevelDB: records are kept by
 * sha256(data), verified before they are stored and again whenever they are read, indexed by the
 * fields their own verification yields (never by what a peer claims), and evicted oldest first past
 * the retention limits. Key layout (docs/ARCHIVE.md, "Storage"):
 *
 *   r/<hash hex>                         StoredRecord protobuf (kind, data, stored_at_ms, index fields)
 *   t/<stored_at 15 digits>/<hash hex>   utf8(kind): the order list() walks and eviction follows
 *   j/<job id>/<stored_at>/<hash hex>    by job      (ids URI-encoded: they never contain '/')
 *   n/<node id>/<stored_at>/<hash hex>   by node named in the record
 *   k/<kind>/<stored_at>/<hash hex>      by kind
 *   m/stats                              {count, bytes}, written in the same batch as every change
 *   w/<peer>                             a sync cursor this node keeps for a peer
 */
import { createHash } from 'node:crypto'
import { TypedEmitter } from '../events.ts'
import { decodeStoredRecord, encodeStoredRecord, type StoredRecord } from '../protocol/index.ts'
import type { SectionOp, StoreSection } from '../store/types.ts'
import {
  DEFAULT_LIST_LIMIT, DEFAULT_MAX_AGE_MS, DEFAULT_MAX_BYTES, DEFAULT_PAGE_SIZE, EVICT_BATCH, MAX_LIST_LIMIT, MAX_PAGE_SIZE,
  MAX_QUERY_SCAN, MAX_RECORD_BYTES, RETENTION_INTERVAL_MS, TIME_KEY_WIDTH, VERIFY_BATCH_MIN
} from './constants.ts'
import { InvalidPageTokenError, InvalidRecordError, RecordLogNotStartedError, RecordTooLargeError } from './errors.ts'
import { recordMetrics } from './metrics.ts'
import type {
  ListOptions, ListResult, LoggedRecord, LogEntry, PutResult, QueryOptions, QueryResult, ReadResult, RecordIndex, RecordInput,
  RecordLog, RecordLogComponents, RecordLogEvents, RecordLogInit, Refusal, SyncCursor
} from './types.ts'

export type * from './types.ts'

/** Key of a record in the log's section (tests corrupt records through it). */
export const recordKey = (hash: string): string => `r/${hash}`

const HEX_HASH = /^[0-9a-f]{64}$/
const STATS_KEY = 'm/stats'
const EMPTY = new Uint8Array(0)
const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

const pad = (ms: number): string => Math.max(0, Math.trunc(ms)).toString().padStart(TIME_KEY_WIDTH, '0')
const part = (s: string): string => encodeURIComponent(s)
const hashOfKey = (key: string): string => key.slice(-64)

export function sha256Hex (data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Every index key of a record but r/ (which is keyed by hash alone). */
function indexKeys (hash: string, kind: string, storedAtMs: number, index: RecordIndex): string[] {
  const at = `${pad(storedAtMs)}/${hash}`
  const keys = [`t/${at}`, `k/${part(kind)}/${at}`]
  if (index.jobId !== '') keys.push(`j/${part(index.jobId)}/${at}`)
  for (const id of new Set(index.nodeIds)) if (id !== '') keys.push(`n/${part(id)}/${at}`)
  return keys
}

/** How a verification error is reported: the code (INVALID_RECORD:<check> for InvalidRecordError) and the message. */
export function refusalOf (err: unknown): { code: string, reason: string } {
  if (err instanceof InvalidRecordError) return { code: `${err.code}:${err.reason}`, reason: err.message }
  const code = (err as { code?: unknown } | null)?.code
  return { code: typeof code === 'string' ? code : 'INVALID_RECORD', reason: err instanceof Error ? err.message : String(err) }
}

function refusal (hash: string, err: unknown): Refusal {
  return { hash, ...refusalOf(err) }
}

export function recordLog (init: RecordLogInit) {
  return (components: RecordLogComponents): RecordLog => {
    const { name, verify } = init
    const maxBytes = init.retention?.maxBytes ?? DEFAULT_MAX_BYTES
    const maxAgeMs = init.retention?.maxAgeMs ?? DEFAULT_MAX_AGE_MS
    const logger = components.logger.child({ component: 'record-log', log: name })
    const metrics = recordMetrics(components.metrics)
    const events = new TypedEmitter<RecordLogEvents>(logger)
    const section: StoreSection = components.store.section(name)

    let started = false
    let count = 0
    let bytes = 0
    /** stored_at never goes back, even when the clock does, so list order is store order. */
    let lastStoredAtMs = 0
    let timer: NodeJS.Timeout | undefined
    // Writes go one at a time: each reads what is there, then writes a batch (and the stats) that depends on it.
    let writes: Promise<unknown> = Promise.resolve()
    const serial = async <T>(step: () => Promise<T>): Promise<T> => {
      const run = writes.then(step, step)
      writes = run.catch(() => {})
      return await run
    }

    const assertStarted = (): void => {
      if (!started) throw new RecordLogNotStartedError(name)
    }
    const statsOp = (): SectionOp => ({ type: 'put', key: STATS_KEY, value: utf8.encode(JSON.stringify({ count, bytes })) })

    const check = (kind: string, data: Uint8Array): RecordIndex => {
      if (data.byteLength > MAX_RECORD_BYTES) throw new RecordTooLargeError(data.byteLength, MAX_RECORD_BYTES)
      return verify(kind, data)
    }

    /** Deletes a record and every index key it can be found by; returns the ops and the bytes freed. */
    const removal = (hash: string, value: Uint8Array | undefined): { ops: SectionOp[], freed: number } => {
      const ops: SectionOp[] = [{ type: 'del', key: recordKey(hash) }]
      if (value === undefined) return { ops, freed: 0 }
      try {
        // The stored index fields name the keys written with it (recomputing them would need a valid record).
        const r = decodeStoredRecord(value)
        for (const key of indexKeys(hash, r.kind, r.storedAtMs, r)) ops.push({ type: 'del', key })
      } catch {
        // Undecodable: its index keys stay behind; readers skip keys whose record is gone, eviction removes them.
      }
      return { ops, freed: value.byteLength }
    }

    const dropCorrupt = async (hash: string, seen: Uint8Array, reason: string): Promise<void> => {
      await serial(async () => {
        const now = await section.get(recordKey(hash))
        // A good copy may have replaced it meanwhile (a repair): only the bytes found bad are dropped.
        if (now === undefined || Buffer.compare(now, seen) !== 0) return
        const { ops, freed } = removal(hash, now)
        count = Math.max(0, count - 1)
        bytes = Math.max(0, bytes - freed)
        await section.batch([...ops, statsOp()])
      })
      metrics.corrupt?.inc({ log: name })
      logger.warn({ hash, reason }, 'stored record failed verification on read: dropped')
      events.emit('corrupt', { log: name, hash, reason })
    }

    const read = async (hash: string, opts: { check?: 'full' | 'hash' } = {}): Promise<ReadResult> => {
      assertStarted()
      if (!HEX_HASH.test(hash)) return { status: 'missing' }
      return await checked(hash, await section.get(recordKey(hash)), opts)
    }

    const readMany = async (hashes: string[], opts: { check?: 'full' | 'hash' } = {}): Promise<ReadResult[]> => {
      assertStarted()
      const valid = hashes.filter((h) => HEX_HASH.test(h))
      const values = new Map<string, Uint8Array | undefined>()
      const got = await section.getMany(valid.map(recordKey))
      valid.forEach((h, i) => values.set(h, got[i]))
      return await Promise.all(hashes.map(async (h) => await checked(h, values.get(h), opts)))
    }

    /** A stored value as read: decoded and checked (its hash, and its signature unless only the hash is asked for). */
    const checked = async (hash: string, value: Uint8Array | undefined, opts: { check?: 'full' | 'hash' }): Promise<ReadResult> => {
      if (value === undefined) return { status: 'missing' }
      let reason: string
      try {
        const r = decodeStoredRecord(value)
        if (sha256Hex(r.data) !== hash) throw new Error('sha256 of the data is not the hash it is stored under')
        const index = opts.check === 'hash' ? r : check(r.kind, r.data)
        return { status: 'ok', record: { hash, kind: r.kind, data: r.data, storedAtMs: r.storedAtMs, jobId: index.jobId, nodeIds: index.nodeIds } }
      } catch (err) {
        reason = err instanceof Error ? err.message : String(err)
      }
      await dropCorrupt(hash, value, reason)
      return { status: 'corrupt', reason }
    }

    const put = async (records: RecordInput[]): Promise<PutResult> => {
      assertStarted()
      const refused: Refusal[] = []
      const fresh = new Map<string, { kind: string, data: Uint8Array, index: RecordIndex }>()
      let duplicate = 0
      const refuse = (r: Refusal): void => {
        refused.push(r)
        metrics.refused?.inc({ log: name, reason: r.code })
        logger.debug({ hash: r.hash, code: r.code, reason: r.reason }, 'record refused')
      }
      // Verification is the costly part and needs no lock.
      const unique = new Map<string, RecordInput>()
      for (const r of records) {
        const hash = sha256Hex(r.data)
        if (unique.has(hash)) duplicate++
        else unique.set(hash, r)
      }
      if (init.verifyBatch !== undefined && unique.size >= VERIFY_BATCH_MIN) {
        const batch: Array<[string, RecordInput]> = []
        for (const [hash, r] of unique) {
          if (r.data.byteLength > MAX_RECORD_BYTES) refuse(refusal(hash, new RecordTooLargeError(r.data.byteLength, MAX_RECORD_BYTES)))
          else batch.push([hash, r])
        }
        const outcomes = await init.verifyBatch(batch.map(([, r]) => r))
        batch.forEach(([hash, r], i) => {
          const o = outcomes[i]
          if ('index' in o) fresh.set(hash, { kind: r.kind, data: r.data, index: o.index })
          else refuse({ hash, ...o.error })
        })
      } else {
        for (const [hash, { kind, data }] of unique) {
          try {
            fresh.set(hash, { kind, data, index: check(kind, data) })
          } catch (err) {
            refuse(refusal(hash, err))
          }
        }
      }
      const added: LoggedRecord[] = []
      const hashes = await serial(async () => {
        const candidates = [...fresh.keys()]
        const held = (await section.getMany(candidates.map(recordKey))).map((v) => v !== undefined)
        const ops: SectionOp[] = []
        let addedBytes = 0
        const storedAtMs = Math.max(Date.now(), lastStoredAtMs)
        candidates.forEach((hash, i) => {
          if (held[i]) { duplicate++; return }
          const r = fresh.get(hash) as { kind: string, data: Uint8Array, index: RecordIndex }
          const stored: StoredRecord = { kind: r.kind, data: r.data, storedAtMs, jobId: r.index.jobId, nodeIds: r.index.nodeIds }
          const value = encodeStoredRecord(stored)
          ops.push({ type: 'put', key: recordKey(hash), value })
          const keys = indexKeys(hash, r.kind, storedAtMs, r.index)
          ops.push({ type: 'put', key: keys[0], value: utf8.encode(r.kind) })
          for (const key of keys.slice(1)) ops.push({ type: 'put', key, value: EMPTY })
          added.push({ hash, kind: r.kind, data: r.data, storedAtMs, jobId: r.index.jobId, nodeIds: r.index.nodeIds })
          addedBytes += value.byteLength
        })
        if (added.length === 0) return []
        count += added.length
        bytes += addedBytes
        ops.push(statsOp())
        try {
          await section.batch(ops)
        } catch (err) {
          count -= added.length
          bytes -= addedBytes
          throw err
        }
        lastStoredAtMs = storedAtMs
        if (bytes > maxBytes) await evictLocked(Date.now())
        return added.map((a) => a.hash)
      })
      for (const a of added) metrics.stored?.inc({ log: name, kind: a.kind })
      if (added.length > 0) events.emit('stored', { log: name, records: added })
      return { stored: hashes.length, hashes, duplicate, refused }
    }

    /** Oldest first, while over maxBytes or older than maxAgeMs. Runs under the write lock. */
    const evictLocked = async (now: number): Promise<number> => {
      const oldestKept = pad(now - maxAgeMs)
      let evicted = 0
      for (;;) {
        const ops: SectionOp[] = []
        let freedTotal = 0
        let removed = 0
        for await (const key of section.keys({ gte: 't/', lt: 't0', limit: EVICT_BATCH })) {
          const expired = key.slice(2, 2 + TIME_KEY_WIDTH) < oldestKept
          if (!expired && bytes - freedTotal <= maxBytes) break
          const hash = hashOfKey(key)
          const { ops: del, freed } = removal(hash, await section.get(recordKey(hash)))
          ops.push(...del, { type: 'del', key })
          if (freed > 0) removed++
          freedTotal += freed
        }
        if (ops.length === 0) break
        count = Math.max(0, count - removed)
        bytes = Math.max(0, bytes - freedTotal)
        await section.batch([...ops, statsOp()])
        evicted += removed
      }
      if (evicted > 0) {
        metrics.evicted?.inc({ log: name }, evicted)
        logger.info({ evicted, count, bytes }, 'records evicted by retention')
        events.emit('evicted', { log: name, count: evicted })
      }
      return evicted
    }

    const list = async (opts: ListOptions = {}): Promise<ListResult> => {
      assertStarted()
      const limit = Math.min(Math.max(1, Math.trunc(opts.limit ?? DEFAULT_LIST_LIMIT) || DEFAULT_LIST_LIMIT), MAX_LIST_LIMIT)
      const since = `t/${pad(opts.sinceMs ?? 0)}/`
      const after = opts.afterHash ?? ''
      const range = after === '' ? { gte: since, lt: 't0', limit: limit + 1 } : { gt: `${since}${after}`, lt: 't0', limit: limit + 1 }
      const entries: LogEntry[] = []
      let more = false
      for await (const [key, value] of section.entries(range)) {
        if (entries.length === limit) { more = true; break }
        entries.push({ hash: hashOfKey(key), storedAtMs: Number(key.slice(2, 2 + TIME_KEY_WIDTH)), kind: fromUtf8.decode(value) })
      }
      return { entries, more }
    }

    const query = async (opts: QueryOptions = {}): Promise<QueryResult> => {
      assertStarted()
      const pageSize = Math.min(Math.max(1, Math.trunc(opts.pageSize ?? DEFAULT_PAGE_SIZE) || DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
      const jobId = opts.jobId ?? ''
      const nodeId = opts.nodeId ?? ''
      const kind = opts.kind ?? ''
      const sinceMs = opts.sinceMs ?? 0
      const untilMs = opts.untilMs ?? 0
      // The most selective index the query names; the other conditions are checked on each record.
      const prefix = jobId !== '' ? `j/${part(jobId)}/` : nodeId !== '' ? `n/${part(nodeId)}/` : kind !== '' ? `k/${part(kind)}/` : 't/'
      const lower = `${prefix}${pad(sinceMs)}`
      const upper = untilMs > 0 ? `${prefix}${pad(untilMs)}` : `${prefix}:`
      let range: { gt?: string, gte?: string, lt: string }
      if (opts.pageToken !== undefined && opts.pageToken !== '') {
        const last = Buffer.from(opts.pageToken, 'base64url').toString('utf8')
        if (!last.startsWith(prefix) || last < lower || last >= upper || !HEX_HASH.test(hashOfKey(last))) throw new InvalidPageTokenError()
        range = { gt: last, lt: upper }
      } else {
        range = { gte: lower, lt: upper }
      }
      const records: LoggedRecord[] = []
      const corrupt: string[] = []
      let scanned = 0
      let lastKey = ''
      let more = false
      for await (const key of section.keys(range)) {
        if (records.length === pageSize || scanned === MAX_QUERY_SCAN) { more = true; break }
        scanned++
        lastKey = key
        const hash = hashOfKey(key)
        const got = await read(hash)
        if (got.status === 'corrupt') { corrupt.push(hash); continue }
        if (got.status === 'missing') continue
        const r = got.record
        if (jobId !== '' && r.jobId !== jobId) continue
        if (nodeId !== '' && !r.nodeIds.includes(nodeId)) continue
        if (kind !== '' && r.kind !== kind) continue
        records.push(r)
      }
      return { records, nextPageToken: more ? Buffer.from(lastKey, 'utf8').toString('base64url') : '', corrupt }
    }

    const loadStats = async (): Promise<void> => {
      const raw = await section.get(STATS_KEY)
      if (raw !== undefined) {
        const s = JSON.parse(fromUtf8.decode(raw)) as { count: number, bytes: number }
        count = s.count
        bytes = s.bytes
      } else {
        // A log written before stats were kept (or whose stats were lost): count it once.
        count = 0
        bytes = 0
        for await (const [, value] of section.entries({ gte: 'r/', lt: 'r0' })) { count++; bytes += value.byteLength }
      }
      for await (const key of section.keys({ gte: 't/', lt: 't0', reverse: true, limit: 1 })) lastStoredAtMs = Number(key.slice(2, 2 + TIME_KEY_WIDTH))
    }

    return {
      name,
      put,
      read,
      async get (hash) {
        const r = await read(hash)
        return r.status === 'ok' ? r.record : undefined
      },
      readMany,
      async has (hash) {
        assertStarted()
        return HEX_HASH.test(hash) && await section.get(recordKey(hash)) !== undefined
      },
      async hasMany (hashes) {
        assertStarted()
        const valid = hashes.filter((h) => HEX_HASH.test(h))
        const got = await section.getMany(valid.map(recordKey))
        const held = new Set(valid.filter((_, i) => got[i] !== undefined))
        return hashes.map((h) => held.has(h))
      },
      list,
      query,
      count: () => count,
      bytes: () => bytes,
      async evict () {
        assertStarted()
        return await serial(async () => await evictLocked(Date.now()))
      },
      async cursor (peer) {
        assertStarted()
        const raw = await section.get(`w/${part(peer)}`)
        if (raw === undefined) return undefined
        const c = JSON.parse(fromUtf8.decode(raw)) as SyncCursor
        return { sinceMs: Number(c.sinceMs) || 0, afterHash: HEX_HASH.test(c.afterHash) ? c.afterHash : '' }
      },
      async saveCursor (peer, cursor) {
        assertStarted()
        if (cursor === undefined) await section.del(`w/${part(peer)}`)
        else await section.put(`w/${part(peer)}`, utf8.encode(JSON.stringify(cursor)))
      },
      on: (event, listener) => events.on(event, listener),
      async start () {
        if (started) return
        await loadStats()
        started = true
        await serial(async () => await evictLocked(Date.now()))
        timer = setInterval(() => {
          serial(async () => await evictLocked(Date.now())).catch((err: unknown) => logger.warn({ err }, 'retention failed'))
        }, RETENTION_INTERVAL_MS)
        timer.unref()
        logger.debug({ count, bytes }, 'record log opened')
      },
      async stop () {
        if (!started) return
        started = false
        clearInterval(timer)
        timer = undefined
        // Writes under way land before the store below us closes.
        await writes.catch(() => {})
      }
    }
  }
}
