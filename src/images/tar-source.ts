/**
 * Image source 2: an image tar over HTTP(S). The tar streams to a temp file while its sha256 and its
 * manifest are computed; only a tar whose hash equals the pin, and whose config hashes to the pinned
 * image id, is handed to `docker load`.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ContainerConfig } from '../config/types.ts'
import { ImageDownloadError, ImageTarHashMismatchError } from './errors.ts'
import type { ByteReport } from './progress.ts'
import { TarManifestReader } from './tar-manifest.ts'
import type { TarImage } from './tar-manifest.ts'

export interface DownloadedTar {
  path: string
  sha256: string
  bytes: number
  /** Images the archive's manifest lists (undefined when it is not a readable docker-save archive). */
  images: TarImage[] | undefined
  /** Removes the temp file. */
  dispose: () => Promise<void>
}

/**
 * Downloads `container.source.url` into `dir` and checks its sha256 against `source.sha256`.
 * Throws ImageTarHashMismatchError (file already deleted) or ImageDownloadError; an abort of
 * `signal` rejects with the signal's reason, so the caller can tell a timeout from a failure.
 * `onProgress` hears the bytes received on every chunk (the caller throttles), against the
 * Content-Length (0 when the server sends none, or a content-encoding makes it count other bytes).
 */
export async function downloadTar (container: ContainerConfig, dir: string, signal: AbortSignal, onProgress?: ByteReport): Promise<DownloadedTar> {
  const { url } = container.source
  const expected = container.source.sha256.toLowerCase()
  const path = join(dir, `${Date.now()}-${randomBytes(6).toString('hex')}.tar`)
  const dispose = async (): Promise<void> => { await rm(path, { force: true }) }
  const hash = createHash('sha256')
  const reader = new TarManifestReader()
  let bytes = 0

  try {
    let res: Response
    try {
      res = await fetch(url, { signal, redirect: 'follow' })
    } catch (err) {
      if (signal.aborted) throw signal.reason
      throw new ImageDownloadError(container.image, url, describe(err), { imageDigest: container.digest, cause: err })
    }
    if (!res.ok || res.body === null) {
      await res.body?.cancel().catch(() => {})
      throw new ImageDownloadError(container.image, url, `the server answered HTTP ${res.status} ${res.statusText}`.trim(), { imageDigest: container.digest })
    }
    const totalBytes = expectedLength(res.headers)
    onProgress?.(0, totalBytes)
    const observe = new Transform({
      transform (chunk: Buffer, _encoding, done) {
        bytes += chunk.length
        onProgress?.(bytes, totalBytes)
        hash.update(chunk)
        reader.write(chunk)
        done(null, chunk)
      }
    })
    try {
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), observe, createWriteStream(path, { mode: 0o600 }), { signal })
    } catch (err) {
      if (signal.aborted) throw signal.reason
      throw new ImageDownloadError(container.image, url, `the transfer broke off after ${bytes} bytes (${describe(err)})`, { imageDigest: container.digest, cause: err })
    }
  } catch (err) {
    await dispose()
    throw err
  }

  const actual = hash.digest('hex')
  if (actual !== expected) {
    await dispose()
    throw new ImageTarHashMismatchError(container.image, url, expected, actual, container.digest)
  }
  return { path, sha256: actual, bytes, images: reader.images(), dispose }
}

/** The body's size as the server announced it; fetch() decodes a content-encoding, so then it is unknown. */
function expectedLength (headers: Headers): number {
  const encoding = headers.get('content-encoding')
  if (encoding !== null && encoding.trim().toLowerCase() !== 'identity') return 0
  const length = Number(headers.get('content-length') ?? '')
  return Number.isSafeInteger(length) && length > 0 ? length : 0
}

function describe (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  // fetch() wraps the socket error ("fetch failed"); the cause says what actually happened.
  const cause = (err as { cause?: unknown }).cause
  return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message
}
