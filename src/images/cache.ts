/** The verified image cache: every image is found or fetched by its pinned id, then reused by that id. */
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import Dockerode from 'dockerode'
import type { ContainerConfig } from '../config/types.ts'
import { resolveEngine } from '../runtime/index.ts'
import { EngineUnavailableError, ImageDigestMismatchError, ImageNotFoundError } from '../runtime/errors.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { ImageCache, ImageCacheStats, PrefetchResult } from './types.ts'
import { DEFAULT_HIT_CACHE_MS, DOWNLOAD_DIR, RECORD_FILE } from './constants.ts'
import { ImageEngine, normaliseReference } from './engine.ts'
import type { EngineImage } from './engine.ts'
import { ImageCacheNotStartedError, ImageFetchAbortedError, ImageTarHashMismatchError } from './errors.ts'
import { planEviction } from './eviction.ts'
import { fetchFromRegistry, fetchFromTar, reasonText } from './fetch.ts'
import type { FetchContext } from './fetch.ts'
import { readRecord, writeRecord } from './record.ts'
import type { FetchSource, ImageRecordEntry } from './record.ts'
import type { ProgressListener } from './progress.ts'
import type { ImageProgress } from '../runtime/types.ts'

export interface ImageCacheInit {
  /** Docker API socket; default: DOCKER_HOST when set, else /var/run/docker.sock (as the runtime). */
  socket?: string
  /** Limit of one engine call (inspect, tag, remove, list). */
  engineTimeoutMs: number
  /** Limit of fetching one image from one source (download + load, or pull). */
  pullTimeoutMs: number
  /** Disk budget for images this cache brought in that no configured container pins. */
  budgetBytes: number
  /** Holds images.json and the temp folder for downloads. */
  dataDir: string
  /** The node's containers: their pinned images are never evicted. */
  configured: ContainerConfig[]
  /** How long a verified hit is answered from memory (default DEFAULT_HIT_CACHE_MS; 0 = always inspect). */
  hitCacheMs?: number
}

export interface ImageCacheComponents {
  logger: Logger
  /** Where the cache registers its metrics (hit ratio). */
  metrics?: Metrics
}

type Origin = 'local' | FetchSource

interface Resolved { id: string, origin: Origin }

/** One resolution of an image, shared by every concurrent ensure() of it. */
interface Flight {
  promise: Promise<Resolved>
  controller: AbortController
  waiters: number
  /** The fetch's last (throttled) progress; undefined until a download starts. */
  progress: ImageProgress | undefined
  /** The onProgress of each waiting ensure() that asked for it. */
  listeners: Set<ProgressListener>
}

export class DockerImageCache implements ImageCache {
  readonly #engine: ImageEngine
  readonly #where: string
  readonly #logger: Logger
  readonly #init: ImageCacheInit
  readonly #hitCacheMs: number
  readonly #recordPath: string
  readonly #downloadDir: string
  readonly #records = new Map<string, ImageRecordEntry>()
  readonly #verified = new Map<string, { id: string, atMs: number }>()
  readonly #flights = new Map<string, Flight>()
  #recordDirty = false
  #writing: Promise<void> = Promise.resolve()
  #installing: Promise<unknown> = Promise.resolve()
  #evicting: Promise<string[]> | undefined
  #hits = 0
  #misses = 0
  #started = false

  constructor (init: ImageCacheInit, components: ImageCacheComponents) {
    const engine = resolveEngine(init.socket)
    this.#engine = new ImageEngine(new Dockerode(engine.options), init.engineTimeoutMs)
    this.#where = engine.where
    this.#logger = components.logger.child({ component: 'images' })
    this.#init = init
    this.#hitCacheMs = init.hitCacheMs ?? DEFAULT_HIT_CACHE_MS
    this.#recordPath = join(init.dataDir, RECORD_FILE)
    this.#downloadDir = join(init.dataDir, DOWNLOAD_DIR)
    components.metrics?.gauge({ name: 'inframind_image_cache_hit_ratio', help: 'Image lookups answered from the local engine, over all lookups', read: () => this.stats().hitRatio })
  }

  async start (): Promise<void> {
    if (this.#started) return
    try {
      await this.#engine.ping()
    } catch (err) {
      throw new EngineUnavailableError(this.#where, { cause: err })
    }
    // Tars left by a crash are never trusted or reused: they are fetched again when needed.
    await rm(this.#downloadDir, { recursive: true, force: true })
    await mkdir(this.#downloadDir, { recursive: true, mode: 0o700 })
    this.#records.clear()
    try {
      for (const entry of await readRecord(this.#recordPath)) this.#records.set(entry.id, entry)
    } catch (err) {
      // Forgetting what we brought in only means those images are never evicted: the safe direction.
      this.#logger.warn({ file: this.#recordPath, err: (err as Error).message }, 'image record unreadable; starting with an empty one')
    }
    this.#started = true
    try {
      await this.evict()
    } catch (err) {
      this.#logger.warn({ err: (err as Error).message }, 'image eviction at start failed; will retry at the next start')
    }
  }

  async stop (): Promise<void> {
    if (!this.#started) return
    this.#started = false
    for (const flight of this.#flights.values()) flight.controller.abort('the image cache is stopping')
    await Promise.allSettled([...this.#flights.values()].map(async (f) => await f.promise))
    await this.#evicting?.catch(() => [])
    if (this.#recordDirty) await this.#persist()
    await this.#writing
    this.#verified.clear()
  }

  stats (): ImageCacheStats {
    const total = this.#hits + this.#misses
    return { hits: this.#hits, misses: this.#misses, hitRatio: total === 0 ? 1 : this.#hits / total }
  }

  async ensure (container: ContainerConfig, opts: { signal?: AbortSignal, onProgress?: ProgressListener } = {}): Promise<string> {
    return (await this.#ensure(container, opts.signal, opts.onProgress)).id
  }

  progress (container: ContainerConfig): ImageProgress | undefined {
    return this.#flights.get(keyOf(container))?.progress
  }

  async prefetch (containers: ContainerConfig[]): Promise<PrefetchResult[]> {
    const outcomes = new Map<string, { ok: boolean, source: string, error: string }>()
    const results: PrefetchResult[] = []
    // One image at a time: fetches compete for the same disk and (on small nodes) the same two cores.
    for (const container of containers) {
      const key = keyOf(container)
      let outcome = outcomes.get(key)
      if (outcome === undefined) {
        const began = Date.now()
        try {
          const resolved = await this.#ensure(container, undefined, undefined)
          outcome = { ok: true, source: resolved.origin, error: '' }
          this.#logger.info({ container: container.id, image: container.image, source: resolved.origin, ms: Date.now() - began }, 'image ready')
        } catch (err) {
          const e = err as Error & { code?: string }
          outcome = { ok: false, source: '', error: `${e.code ?? e.name}: ${e.message}` }
          this.#logger.warn({ container: container.id, image: container.image, code: e.code ?? e.name, err: e.message }, 'image prefetch failed')
        }
        outcomes.set(key, outcome)
      }
      results.push({ containerId: container.id, image: container.image, ...outcome })
    }
    return results
  }

  async evict (): Promise<string[]> {
    this.#assertStarted()
    this.#evicting ??= this.#evict().finally(() => { this.#evicting = undefined })
    return await this.#evicting
  }

  async #ensure (container: ContainerConfig, signal: AbortSignal | undefined, onProgress: ProgressListener | undefined): Promise<Resolved> {
    this.#assertStarted()
    if (signal?.aborted === true) throw new ImageFetchAbortedError(container.image, reasonText(signal.reason))
    const key = keyOf(container)
    const memo = this.#verified.get(key)
    if (memo !== undefined && Date.now() - memo.atMs < this.#hitCacheMs) {
      this.#hits++
      this.#touch(memo.id)
      return { id: memo.id, origin: 'local' }
    }
    let flight = this.#flights.get(key)
    if (flight === undefined) flight = this.#launch(key, container)
    flight.waiters++
    if (onProgress !== undefined) {
      flight.listeners.add(onProgress)
      // Joining a download under way: say at once how far it is, not only at its next report.
      if (flight.progress !== undefined) tell(onProgress, flight.progress)
    }
    try {
      const resolved = await waitFor(flight.promise, signal, container.image)
      if (resolved.origin === 'local') this.#hits++
      else this.#misses++
      this.#verified.set(key, { id: resolved.id, atMs: Date.now() })
      this.#touch(resolved.id)
      return resolved
    } catch (err) {
      this.#misses++
      throw err
    } finally {
      if (onProgress !== undefined) flight.listeners.delete(onProgress)
      flight.waiters--
      // Nobody waits any more (every caller gave up): stop fetching for no one.
      if (flight.waiters === 0 && this.#flights.get(key) === flight) {
        this.#flights.delete(key)
        flight.controller.abort('every caller gave up waiting')
      }
    }
  }

  #launch (key: string, container: ContainerConfig): Flight {
    const controller = new AbortController()
    // The progress callback runs only after #resolve's first await, when `flight` is set.
    const flight: Flight = {
      promise: this.#resolve(container, controller.signal, (progress) => {
        flight.progress = progress
        for (const listener of flight.listeners) tell(listener, progress)
      }),
      controller,
      waiters: 0,
      progress: undefined,
      listeners: new Set()
    }
    flight.promise.catch(() => {}).finally(() => {
      if (this.#flights.get(key) === flight) this.#flights.delete(key)
    })
    this.#flights.set(key, flight)
    return flight
  }

  /** Local images, then the tar URL, then the registry; the pinned id is the only acceptable answer. */
  async #resolve (container: ContainerConfig, signal: AbortSignal, onProgress: ProgressListener): Promise<Resolved> {
    const { image, digest, source } = container
    try {
      const byTag = await this.#engine.inspect(image, signal)
      if (byTag?.id === digest) return { id: digest, origin: 'local' }
      const byId = await this.#engine.inspect(digest, signal)
      if (byId !== undefined) {
        if (byTag === undefined) await this.#engine.tag(digest, image).catch(() => {})
        else this.#logger.warn({ image, tagged: byTag.id, pinned: digest }, 'tag names another image; using the pinned id')
        return { id: digest, origin: 'local' }
      }
      const tried = [byTag === undefined ? `local engine: no ${image}` : `local engine: ${image} is ${byTag.id}`, `local engine: no ${digest}`]

      const ctx = this.#fetchContext()
      let failure: Error | undefined
      const attempt = async (what: string, fetch: (previous: EngineImage | undefined) => Promise<unknown>, origin: FetchSource): Promise<Resolved | undefined> => {
        try {
          const fetched = await fetch(byTag) as { sizeBytes: number }
          this.#remember(container, origin, fetched.sizeBytes)
          return { id: digest, origin }
        } catch (err) {
          // A source that serves the wrong bytes is reported at once, never papered over by the next one.
          if (signal.aborted || err instanceof ImageTarHashMismatchError || err instanceof ImageDigestMismatchError) throw err
          failure = err as Error
          tried.push(`${what}: ${(err as { code?: string }).code ?? (err as Error).name}`)
          this.#logger.warn({ image, source: origin, err: (err as Error).message }, 'image source failed')
          return undefined
        }
      }
      if (source.url !== '') {
        const got = await attempt(`tar ${source.url}`, async (prev) => await fetchFromTar(ctx, container, prev, signal, onProgress), 'tar')
        if (got !== undefined) return got
      }
      if (source.pull) {
        const got = await attempt(`registry pull of ${image}`, async (prev) => await fetchFromRegistry(ctx, container, prev, signal, onProgress), 'registry')
        if (got !== undefined) return got
      }
      if (failure !== undefined) throw failure
      if (byTag !== undefined) throw new ImageDigestMismatchError(image, digest, byTag.id)
      const notFound = new ImageNotFoundError(image, { imageDigest: digest })
      notFound.message += `. Tried: ${tried.join('; ')}; no source.url or source.pull is configured`
      throw notFound
    } catch (err) {
      if (signal.aborted && !(err instanceof ImageFetchAbortedError)) throw new ImageFetchAbortedError(image, reasonText(signal.reason))
      throw err
    }
  }

  #fetchContext (): FetchContext {
    return {
      engine: this.#engine,
      logger: this.#logger,
      downloadDir: this.#downloadDir,
      pullTimeoutMs: this.#init.pullTimeoutMs,
      exclusive: async <T>(work: () => Promise<T>): Promise<T> => {
        const run = this.#installing.catch(() => {}).then(work)
        this.#installing = run
        return await run
      }
    }
  }

  #remember (container: ContainerConfig, source: FetchSource, sizeBytes: number): void {
    const now = Date.now()
    this.#records.set(container.digest, { id: container.digest, ref: container.image, source, sizeBytes, fetchedAtMs: now, lastUsedMs: now })
    void this.#persist()
  }

  /** Last-use times are kept in memory and written with the next record write (fetch, evict, stop). */
  #touch (id: string): void {
    const entry = this.#records.get(id)
    if (entry === undefined) return
    entry.lastUsedMs = Date.now()
    this.#recordDirty = true
  }

  async #persist (): Promise<void> {
    this.#recordDirty = false
    const snapshot = [...this.#records.values()].map((e) => ({ ...e }))
    this.#writing = this.#writing.then(async () => { await writeRecord(this.#recordPath, snapshot) }).catch((err: unknown) => {
      this.#recordDirty = true
      this.#logger.warn({ file: this.#recordPath, err: (err as Error).message }, 'could not write the image record')
    })
    await this.#writing
  }

  async #evict (): Promise<string[]> {
    const inUse = await this.#engine.imagesInUse()
    // Images just handed out may be about to become containers.
    for (const memo of this.#verified.values()) inUse.add(memo.id)
    for (const entry of [...this.#records.values()]) {
      const info = await this.#engine.inspect(entry.id)
      if (info === undefined) {
        this.#records.delete(entry.id)
        this.#recordDirty = true
        continue
      }
      entry.sizeBytes = info.sizeBytes
      // Someone else tagged it too: it is theirs as much as ours.
      const ours = normaliseReference(entry.ref)
      if (info.repoTags.some((t) => normaliseReference(t) !== ours)) inUse.add(entry.id)
    }
    const pinned = new Set(this.#init.configured.map((c) => c.digest))
    const plan = planEviction({ records: [...this.#records.values()], pinned, inUse, budgetBytes: this.#init.budgetBytes })
    const removed: string[] = []
    for (const id of plan.evict) {
      try {
        await this.#engine.remove(id)
        removed.push(id)
        this.#logger.info({ id, ref: this.#records.get(id)?.ref, bytes: this.#records.get(id)?.sizeBytes }, 'evicted unused image')
        this.#records.delete(id)
        this.#recordDirty = true
      } catch (err) {
        this.#logger.warn({ id, err: (err as Error).message }, 'could not evict image; keeping it')
      }
    }
    if (plan.evict.length > 0 || this.#recordDirty) await this.#persist()
    this.#logger.debug({ unusedBytes: plan.unusedBytes, budgetBytes: this.#init.budgetBytes, removed: removed.length }, 'image eviction done')
    return removed
  }

  #assertStarted (): void {
    if (!this.#started) throw new ImageCacheNotStartedError()
  }
}

/** One listener's failure never keeps the others (or the download) from going on. */
function tell (listener: ProgressListener, progress: ImageProgress): void {
  try {
    listener(progress)
  } catch {
    // The listener's own problem; progress is advisory.
  }
}

function keyOf (container: ContainerConfig): string {
  return `${container.image}\n${container.digest}`
}

async function waitFor<T> (promise: Promise<T>, signal: AbortSignal | undefined, image: string): Promise<T> {
  if (signal === undefined) return await promise
  return await new Promise<T>((resolve, reject) => {
    const onAbort = (): void => { reject(new ImageFetchAbortedError(image, reasonText(signal.reason))) }
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then((value) => {
      signal.removeEventListener('abort', onAbort)
      resolve(value)
    }, (err: unknown) => {
      signal.removeEventListener('abort', onAbort)
      reject(err as Error)
    })
  })
}
