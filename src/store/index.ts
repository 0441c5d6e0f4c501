import { mkdir } from 'node:fs/promises'
import { ClassicLevel } from 'classic-level'
import { decodeRecord, encodeRecord } from './codec.ts'
import { COUNTERS_KEY, DEFAULT_LIST_LIMIT, MAX_DISPUTES, NUMERIC_KEY_WIDTH, SUBLEVELS } from './constants.ts'
import { NotStartedError, StoreOpenError } from './errors.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { JobCounters, JobRecord, JobStore, ListOptions, StoreSection } from './types.ts'

export * from './errors.ts'
export { RecordDecodeError } from './codec.ts'
export { SUBLEVELS } from './constants.ts'
export type * from './types.ts'

export interface LevelStoreInit {
  /** LevelDB directory (created when missing). */
  path: string
  /** Completed jobs kept; past this the least recently used are evicted. */
  maxResults: number
}

export interface LevelStoreComponents {
  logger: Logger
}

/** Job store on an embedded LevelDB (classic-level). */
export function levelStore (init: LevelStoreInit): (components: LevelStoreComponents) => JobStore {
  return (components) => new LevelJobStore(init, components)
}

type Db = ClassicLevel<string, string>
const sublevel = (db: Db, name: string) => db.sublevel<string, string>(name, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
type Sub = ReturnType<typeof sublevel>
const binarySublevel = (db: Db, name: string) => db.sublevel<string, Uint8Array>(name, { keyEncoding: 'utf8', valueEncoding: 'view' })
type BinarySub = ReturnType<typeof binarySublevel>

interface Open {
  db: Db
  active: Sub
  completed: Sub
  lru: Sub
  lruById: Sub
  created: Sub
  meta: Sub
  reputation: Sub
  disputes: Sub
}

/** The engine hands back Buffers; sections promise plain Uint8Arrays (same bytes, no copy). */
function plain (v: Uint8Array | undefined): Uint8Array | undefined {
  return v === undefined ? undefined : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
}

async function * plainEntries (it: AsyncIterable<[string, Uint8Array]>): AsyncIterable<[string, Uint8Array]> {
  for await (const [k, v] of it) yield [k, plain(v) as Uint8Array]
}

const pad = (n: number): string => Math.max(0, Math.trunc(n)).toString().padStart(NUMERIC_KEY_WIDTH, '0')
const createdKey = (job: JobRecord): string => `${pad(job.createdAtMs)}!${job.id}`
const idOfCreatedKey = (key: string): string => key.slice(NUMERIC_KEY_WIDTH + 1)

/** LevelDB's defaults (8 MiB cache, 4 MiB write buffer) are sized for servers, not for a few thousand records. */
const STORE_CACHE_BYTES = 1024 * 1024
const STORE_WRITE_BUFFER_BYTES = 1024 * 1024

class LevelJobStore implements JobStore {
  readonly #path: string
  readonly #maxResults: number
  readonly #log: Logger
  #open: Open | undefined
  // Writes go one at a time: complete() reads the LRU index, then writes a batch that depends
  // on what it read, and an interleaved write would evict the wrong job or double-count.
  #writes: Promise<unknown> = Promise.resolve()
  /** Mirror of the lruById index (bounded by maxResults), so completing a job needs no read first. */
  readonly #seqById = new Map<string, string>()
  // Mirrors of persisted state, loaded at start and updated only after a batch succeeds.
  #nextSeq = 0
  #completedCount = 0
  #counters: JobCounters = { served: 0, succeeded: 0, failed: 0 }

  constructor (init: LevelStoreInit, components: LevelStoreComponents) {
    this.#path = init.path
    this.#maxResults = init.maxResults
    // The composer already names the component on this logger (node.ts), so it is used as given.
    this.#log = components.logger
  }

  async start (): Promise<void> {
    if (this.#open !== undefined) return
    const db: Db = new ClassicLevel<string, string>(this.#path, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    try {
      await mkdir(this.#path, { recursive: true })
      // Small caches: an edge node's job store is small, and idle memory matters more than read speed.
      await db.open({ cacheSize: STORE_CACHE_BYTES, writeBufferSize: STORE_WRITE_BUFFER_BYTES })
    } catch (err) {
      throw new StoreOpenError(this.#path, { cause: (err as Error).cause ?? err })
    }
    const open: Open = {
      db,
      active: sublevel(db, SUBLEVELS.active),
      completed: sublevel(db, SUBLEVELS.completed),
      lru: sublevel(db, SUBLEVELS.lru),
      lruById: sublevel(db, SUBLEVELS.lruById),
      created: sublevel(db, SUBLEVELS.created),
      meta: sublevel(db, SUBLEVELS.meta),
      reputation: sublevel(db, SUBLEVELS.reputation),
      disputes: sublevel(db, SUBLEVELS.disputes)
    }
    try {
      await this.#load(open)
    } catch (err) {
      await db.close().catch(() => {})
      throw new StoreOpenError(this.#path, { cause: err })
    }
    this.#open = open
    this.#log.info({ path: this.#path, completed: this.#completedCount, served: this.#counters.served }, 'job store opened')
  }

  async stop (): Promise<void> {
    const open = this.#open
    if (open === undefined) return
    this.#open = undefined
    // Let queued writes land before closing, so an accepted job is never dropped on shutdown.
    await this.#writes.catch(() => {})
    await open.db.close()
  }

  section (name: string): StoreSection {
    if (!/^[a-z0-9-]{1,32}$/.test(name) || (Object.values(SUBLEVELS) as string[]).includes(name)) {
      throw new TypeError(`store section name "${name}" must be 1-32 of a-z, 0-9, '-' and not one of the store's own (${Object.values(SUBLEVELS).join(', ')})`)
    }
    const subs = new WeakMap<Db, BinarySub>()
    const sub = (): BinarySub => {
      const db = this.#db().db
      let s = subs.get(db)
      if (s === undefined) {
        s = binarySublevel(db, `x-${name}`)
        subs.set(db, s)
      }
      return s
    }
    return {
      get: async (key) => plain(await sub().get(key)),
      getMany: async (keys) => keys.length === 0 ? [] : (await sub().getMany(keys)).map(plain),
      put: async (key, value) => { await sub().put(key, value) },
      del: async (key) => { await sub().del(key) },
      batch: async (ops) => { await sub().batch(ops) },
      entries: (range = {}) => plainEntries(sub().iterator(range)),
      keys: (range = {}) => sub().keys(range)
    }
  }

  async putActive (job: JobRecord): Promise<void> {
    const o = this.#db()
    await this.#serial(async () => {
      await o.db.batch()
        .put(job.id, encodeRecord(job), { sublevel: o.active })
        .put(createdKey(job), job.state, { sublevel: o.created })
        .write()
    })
  }

  async complete (job: JobRecord): Promise<void> {
    const o = this.#db()
    await this.#serial(async () => {
      const oldSeq = this.#seqById.get(job.id)
      const seq = this.#nextSeq
      const evicted: string[] = []
      const batch = o.db.batch()
        .del(job.id, { sublevel: o.active })
        .put(job.id, encodeRecord(job), { sublevel: o.completed })
        .put(createdKey(job), job.state, { sublevel: o.created })
        .put(pad(seq), createdKey(job), { sublevel: o.lru })
        .put(job.id, pad(seq), { sublevel: o.lruById })
      let count = this.#completedCount
      let counters = this.#counters
      if (oldSeq !== undefined) {
        // Completing the same job again replaces it; it is not a second served job.
        batch.del(oldSeq, { sublevel: o.lru })
      } else {
        count += 1
        counters = {
          served: counters.served + 1,
          succeeded: counters.succeeded + (job.state === 'success' ? 1 : 0),
          failed: counters.failed + (job.state === 'success' ? 0 : 1)
        }
        batch.put(COUNTERS_KEY, JSON.stringify(counters), { sublevel: o.meta })
      }
      const excess = count - this.#maxResults
      if (excess > 0) {
        // Oldest access seq first; the job being completed is never a victim (its new seq is the newest).
        for await (const [seqKey, ckey] of o.lru.iterator({ limit: excess + 1 })) {
          if (count <= this.#maxResults) break
          if (seqKey === oldSeq) continue
          const id = idOfCreatedKey(ckey)
          batch.del(seqKey, { sublevel: o.lru })
            .del(id, { sublevel: o.lruById })
            .del(id, { sublevel: o.completed })
            .del(ckey, { sublevel: o.created })
          evicted.push(id)
          count -= 1
        }
      }
      await batch.write()
      for (const id of evicted) this.#seqById.delete(id)
      this.#seqById.set(job.id, pad(seq))
      this.#nextSeq = seq + 1
      this.#completedCount = count
      this.#counters = counters
    })
  }

  async get (id: string): Promise<JobRecord | undefined> {
    const o = this.#db()
    const activeText = await o.active.get(id)
    if (activeText !== undefined) return this.#decode(id, activeText)
    const text = await o.completed.get(id)
    if (text === undefined) return undefined
    const job = this.#decode(id, text)
    if (job === undefined) return undefined
    // The access is recorded behind the queued writes, but the reader does not wait for it: a status
    // read stays a read even while intake keeps the write queue busy. stop() still lets it land.
    this.#touch(o, job).catch((err: unknown) => {
      // A lost LRU bump only makes eviction slightly less fair; the read itself succeeded.
      this.#log.warn({ err, jobId: id }, 'could not record access to a completed job')
    })
    return job
  }

  async listActive (): Promise<JobRecord[]> {
    const o = this.#db()
    const jobs: JobRecord[] = []
    for await (const [id, text] of o.active.iterator()) {
      const job = this.#decode(id, text)
      if (job !== undefined) jobs.push(job)
    }
    return jobs.sort((a, b) => a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  async list (opts: ListOptions = {}): Promise<JobRecord[]> {
    const o = this.#db()
    const limit = opts.limit !== undefined && opts.limit > 0 ? opts.limit : DEFAULT_LIST_LIMIT
    const jobs: JobRecord[] = []
    // The created index carries each job's state, so a filtered list reads only matching records.
    for await (const [ckey, state] of o.created.iterator({ reverse: true })) {
      if (opts.state !== undefined && state !== opts.state) continue
      const id = idOfCreatedKey(ckey)
      const sub = state === 'pending' || state === 'running' ? o.active : o.completed
      const text = await sub.get(id)
      if (text === undefined) continue
      const job = this.#decode(id, text)
      if (job === undefined) continue
      jobs.push(job)
      if (jobs.length >= limit) break
    }
    return jobs
  }

  /** node id → the scheduler's record of it (src/scheduler/reputation.ts), as stored. */
  async loadReputation (): Promise<Map<string, string>> {
    const o = this.#db()
    const out = new Map<string, string>()
    for await (const [id, text] of o.reputation.iterator()) out.set(id, text)
    return out
  }

  async saveReputation (nodeId: string, record: string): Promise<void> {
    const o = this.#db()
    await this.#serial(async () => { await o.reputation.put(nodeId, record) })
  }

  async saveDispute (key: string, record: string): Promise<void> {
    const o = this.#db()
    await this.#serial(async () => {
      await o.disputes.put(key, record)
      let count = 0
      for await (const _ of o.disputes.keys()) count += 1
      if (count <= MAX_DISPUTES) return
      const batch = o.db.batch()
      for await (const k of o.disputes.keys({ limit: count - MAX_DISPUTES })) batch.del(k, { sublevel: o.disputes })
      await batch.write()
    })
  }

  async listDisputes (): Promise<Array<[string, string]>> {
    const o = this.#db()
    const out: Array<[string, string]> = []
    for await (const entry of o.disputes.iterator()) out.push(entry)
    return out
  }

  async completedCount (): Promise<number> {
    this.#db()
    return this.#completedCount
  }

  async counters (): Promise<JobCounters> {
    this.#db()
    return { ...this.#counters }
  }

  #db (): Open {
    if (this.#open === undefined) throw new NotStartedError('job store')
    return this.#open
  }

  #serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.#writes.then(fn, fn)
    this.#writes = run.catch(() => {})
    return run
  }

  async #touch (o: Open, job: JobRecord): Promise<void> {
    await this.#serial(async () => {
      const oldSeq = this.#seqById.get(job.id)
      // Evicted between the read and now, or already the most recent: nothing to move.
      if (oldSeq === undefined || oldSeq === pad(this.#nextSeq - 1)) return
      const seq = this.#nextSeq
      await o.db.batch()
        .del(oldSeq, { sublevel: o.lru })
        .put(pad(seq), createdKey(job), { sublevel: o.lru })
        .put(job.id, pad(seq), { sublevel: o.lruById })
        .write()
      this.#seqById.set(job.id, pad(seq))
      this.#nextSeq = seq + 1
    })
  }

  #decode (id: string, text: string): JobRecord | undefined {
    try {
      return decodeRecord(text)
    } catch (err) {
      // One damaged record must not take the node down; it is reported and left out.
      this.#log.warn({ err, jobId: id }, 'skipping corrupt job record')
      return undefined
    }
  }

  async #load (o: Open): Promise<void> {
    this.#seqById.clear()
    for await (const [id, seq] of o.lruById.iterator()) this.#seqById.set(id, seq)
    let count = 0
    for await (const _ of o.completed.keys()) count += 1
    this.#completedCount = count
    let next = 0
    for await (const key of o.lru.keys({ reverse: true, limit: 1 })) next = Number(key) + 1
    this.#nextSeq = Number.isSafeInteger(next) ? next : 0
    const text = await o.meta.get(COUNTERS_KEY)
    this.#counters = parseCounters(text) ?? { served: 0, succeeded: 0, failed: 0 }
    if (text !== undefined && parseCounters(text) === undefined) {
      this.#log.warn('job counters record is corrupt; served/succeeded/failed restart from 0')
    }
  }
}

function parseCounters (text: string | undefined): JobCounters | undefined {
  if (text === undefined) return undefined
  try {
    const v = JSON.parse(text) as Partial<JobCounters>
    if (typeof v.served === 'number' && typeof v.succeeded === 'number' && typeof v.failed === 'number') {
      return { served: v.served, succeeded: v.succeeded, failed: v.failed }
    }
  } catch {}
  return undefined
}
