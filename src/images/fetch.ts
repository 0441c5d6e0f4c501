/**
 * Fetching a missing image: tar URL (source 2) or registry pull (source 3), each bounded by
 * pull_timeout_ms and followed by the same check: the engine must now hold the pinned id. What a
 * failed fetch added to the engine is removed again, and a tag it moved is put back.
 */
import type { ContainerConfig } from '../config/types.ts'
import { ImageDigestMismatchError } from '../runtime/errors.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { EngineImage, ImageEngine, RegistryAuth } from './engine.ts'
import { splitReference } from './engine.ts'
import { ImageFetchAbortedError, ImageFetchTimeoutError, ImageLoadError, RegistryPullError } from './errors.ts'
import { ProgressThrottle } from './progress.ts'
import type { ProgressListener } from './progress.ts'
import { downloadTar } from './tar-source.ts'

export interface FetchContext {
  engine: ImageEngine
  logger: Logger
  downloadDir: string
  pullTimeoutMs: number
  /** Runs load/pull + verification one at a time, so one fetch never mistakes another's image for its own. */
  exclusive: <T>(work: () => Promise<T>) => Promise<T>
}

export interface Fetched {
  sizeBytes: number
  /** Time spent, for the logs: download (tar only), load or pull. */
  downloadMs: number
  installMs: number
}

/** What the engine had before the fetch, so a refused fetch can be undone without touching others' images. */
interface Before {
  ids: Set<string>
  /** Id the container's tag named before (undefined when the tag was absent). */
  tagId: string | undefined
}

/** `onProgress` hears the tar's bytes as they arrive (throttled); the last count stays while the engine loads it. */
export async function fetchFromTar (ctx: FetchContext, container: ContainerConfig, previous: EngineImage | undefined, signal: AbortSignal, onProgress?: ProgressListener): Promise<Fetched> {
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(ctx.pullTimeoutMs)])
  const began = Date.now()
  const throttle = onProgress === undefined ? undefined : new ProgressThrottle(onProgress)
  const tar = await guard(ctx, container, 'tar download', signal, deadline, async () => {
    try {
      return await downloadTar(container, ctx.downloadDir, deadline, throttle?.report.bind(throttle))
    } finally {
      throttle?.close()
    }
  })
  try {
    const downloadMs = Date.now() - began
    if (tar.images !== undefined) {
      // The archive's manifest names its image configs; their hashes are the ids a load would create.
      if (!tar.images.some((i) => i.id === container.digest)) {
        throw new ImageDigestMismatchError(container.image, container.digest, tar.images.map((i) => i.id).join(', ') || '(an empty archive)')
      }
      const extra = tar.images.filter((i) => i.id !== container.digest)
      if (extra.length > 0) ctx.logger.warn({ image: container.image, extra: extra.map((i) => i.id) }, 'image tar holds more images than the pinned one; all are loaded')
    } else {
      ctx.logger.warn({ image: container.image, url: container.source.url }, 'image tar has no readable docker-save manifest; relying on the engine\'s id after load')
    }
    const loadBegan = Date.now()
    const sizeBytes = await ctx.exclusive(async () => {
      const before = await snapshot(ctx, previous, deadline)
      const loaded = await guard(ctx, container, 'docker load', signal, deadline, async () => {
        try {
          return await ctx.engine.load(tar.path, deadline)
        } catch (err) {
          if (deadline.aborted) throw err
          throw new ImageLoadError(container.image, (err as Error).message, { imageDigest: container.digest, cause: err })
        }
      })
      return await verifyFetched(ctx, container, before, loaded)
    })
    const installMs = Date.now() - loadBegan
    ctx.logger.info({ image: container.image, digest: container.digest, bytes: tar.bytes, downloadMs, loadMs: installMs }, 'image loaded from a verified tar')
    return { sizeBytes, downloadMs, installMs }
  } finally {
    await tar.dispose()
  }
}

/** `onProgress` hears the bytes of the layers the engine downloads (throttled). */
export async function fetchFromRegistry (ctx: FetchContext, container: ContainerConfig, previous: EngineImage | undefined, signal: AbortSignal, onProgress?: ProgressListener): Promise<Fetched> {
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(ctx.pullTimeoutMs)])
  const { username, password } = container.source
  const auth: RegistryAuth | undefined = username === '' && password === ''
    ? undefined
    : { username, password, serveraddress: registryHost(container.image) }
  const began = Date.now()
  const sizeBytes = await ctx.exclusive(async () => {
    const before = await snapshot(ctx, previous, deadline)
    const throttle = onProgress === undefined ? undefined : new ProgressThrottle(onProgress)
    await guard(ctx, container, 'registry pull', signal, deadline, async () => {
      try {
        await ctx.engine.pull(container.image, auth, deadline, throttle?.report.bind(throttle))
      } catch (err) {
        if (deadline.aborted) throw err
        // Only the engine's text, scrubbed: the original error object stays out of logs and causes.
        const reason = scrub(engineText(err), [password, username])
        throw new RegistryPullError(container.image, reason, { imageDigest: container.digest })
      } finally {
        throttle?.close()
      }
    })
    return await verifyFetched(ctx, container, before, [container.image])
  })
  const installMs = Date.now() - began
  ctx.logger.info({ image: container.image, digest: container.digest, pullMs: installMs }, 'image pulled from its registry')
  return { sizeBytes, downloadMs: installMs, installMs }
}

/** The registry a reference names, as X-Registry-Auth's serveraddress. */
export function registryHost (image: string): string {
  const first = image.split('/')[0] ?? ''
  if (image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) return first
  return 'https://index.docker.io/v1/'
}

async function snapshot (ctx: FetchContext, previous: EngineImage | undefined, signal: AbortSignal): Promise<Before> {
  return { ids: await ctx.engine.imageIds(signal), tagId: previous?.id }
}

/**
 * After a load or pull: the pinned id must be there. Otherwise undo what the fetch added (images the
 * engine reported loading, or the pulled tag, that did not exist before and no container uses) and refuse.
 */
async function verifyFetched (ctx: FetchContext, container: ContainerConfig, before: Before, reported: string[]): Promise<number> {
  const pinned = await ctx.engine.inspect(container.digest)
  if (pinned !== undefined) {
    if (!pinned.repoTags.includes(container.image) && (await ctx.engine.inspect(container.image)) === undefined) {
      // Archives may carry another name; the tag lets operators (and docker CLI users) find the image.
      await ctx.engine.tag(container.digest, container.image).catch((err: unknown) => {
        ctx.logger.warn({ image: container.image, err: (err as Error).message }, 'could not tag the fetched image')
      })
    }
    return pinned.sizeBytes
  }
  const now = await ctx.engine.inspect(container.image)
  const reportedIds = new Set<string>()
  for (const ref of reported) {
    const info = ref.startsWith('sha256:') ? { id: ref } : await ctx.engine.inspect(ref).catch(() => undefined)
    if (info !== undefined) reportedIds.add(info.id)
  }
  const added = [...reportedIds].filter((id) => !before.ids.has(id))
  const inUse = await ctx.engine.imagesInUse()
  for (const id of added.filter((i) => !inUse.has(i))) {
    await ctx.engine.remove(id).catch((err: unknown) => {
      ctx.logger.warn({ image: container.image, id, err: (err as Error).message }, 'could not remove an image a refused fetch added')
    })
  }
  if (before.tagId !== undefined && now?.id !== before.tagId) {
    await ctx.engine.tag(before.tagId, container.image).catch(() => {})
  }
  ctx.logger.warn({ image: container.image, pinned: container.digest, got: now?.id ?? '', removed: added }, 'fetched image is not the pinned one; refused')
  throw new ImageDigestMismatchError(container.image, container.digest, now?.id ?? (added.length > 0 ? added.join(', ') : '(nothing)'))
}

/** Runs one fetch step; an abort becomes ImageFetchAbortedError (caller/stop) or ImageFetchTimeoutError (deadline). */
async function guard<T> (ctx: FetchContext, container: ContainerConfig, how: string, signal: AbortSignal, deadline: AbortSignal, step: () => Promise<T>): Promise<T> {
  try {
    return await step()
  } catch (err) {
    if (signal.aborted) throw new ImageFetchAbortedError(container.image, reasonText(signal.reason))
    if (deadline.aborted) throw new ImageFetchTimeoutError(container.image, how, ctx.pullTimeoutMs, { imageDigest: container.digest })
    throw err
  }
}

function engineText (err: unknown): string {
  const json = (err as { json?: unknown }).json
  const message = (json as { message?: unknown } | undefined)?.message
  if (typeof message === 'string' && message !== '') return message.trim()
  // docker-modem prefixes "(HTTP code 500) server error - "; the engine's own words are what help.
  return err instanceof Error ? err.message.replace(/^\(HTTP code \d+\)[^-]*- /, '').trim() : String(err)
}

function scrub (text: string, secrets: string[]): string {
  let out = text
  for (const secret of secrets) if (secret.length >= 3) out = out.split(secret).join('[redacted]')
  return out
}

export function reasonText (reason: unknown): string {
  if (reason instanceof Error) return reason.message
  return typeof reason === 'string' && reason !== '' ? reason : 'aborted'
}

export { splitReference }
