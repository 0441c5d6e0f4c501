/** The image calls of the Docker API the cache needs, each bounded by an abort signal. */
import { createReadStream } from 'node:fs'
import type { IncomingMessage } from 'node:http'
import Dockerode from 'dockerode'
import { EngineRequestError } from '../runtime/errors.ts'
import { PullProgressTally } from './progress.ts'
import type { ByteReport } from './progress.ts'

export interface EngineImage {
  id: string
  repoTags: string[]
  sizeBytes: number
}

export interface RegistryAuth {
  username: string
  password: string
  serveraddress: string
}

interface DialOptions {
  path: string
  method: 'GET' | 'POST' | 'DELETE'
  options?: Record<string, string>
  statusCodes: Record<number, true | string>
  abortSignal: AbortSignal
  isStream?: boolean
  file?: NodeJS.ReadableStream
  authconfig?: RegistryAuth
}

/** An engine answer that is not a success: `statusCode` tells 404/409 apart from real failures. */
export interface EngineFailure extends Error {
  statusCode?: number
  json?: unknown
}

export class ImageEngine {
  readonly #docker: Dockerode
  readonly #timeoutMs: number

  constructor (docker: Dockerode, engineTimeoutMs: number) {
    this.#docker = docker
    this.#timeoutMs = engineTimeoutMs
  }

  async ping (): Promise<void> {
    await this.#dial({ path: '/_ping', method: 'GET', statusCodes: { 200: true }, abortSignal: this.#deadline() })
  }

  /** The image `ref` (tag or id) names, or undefined when the engine has no such image. */
  async inspect (ref: string, signal?: AbortSignal): Promise<EngineImage | undefined> {
    try {
      const info = await this.#dial({
        path: `/images/${encodeRef(ref)}/json`,
        method: 'GET',
        statusCodes: { 200: true, 404: 'no such image', 500: 'server error' },
        abortSignal: this.#deadline(signal)
      }) as { Id: string, RepoTags?: string[] | null, Size?: number }
      return { id: info.Id, repoTags: info.RepoTags ?? [], sizeBytes: info.Size ?? 0 }
    } catch (err) {
      if ((err as EngineFailure).statusCode === 404) return undefined
      throw new EngineRequestError(`inspect image ${ref}`, { cause: err })
    }
  }

  /**
   * `docker load` of the tar at `path`; resolves with the refs the engine reports loading (tags, or
   * ids of untagged images). Bounded by `signal` only: a large tar may take longer than one engine call.
   */
  async load (path: string, signal: AbortSignal): Promise<string[]> {
    const file = createReadStream(path)
    try {
      const res = await this.#dial({
        path: '/images/load?',
        method: 'POST',
        options: { quiet: '1' },
        file,
        isStream: true,
        statusCodes: { 200: true, 500: 'server error' },
        abortSignal: signal
      }) as IncomingMessage
      const loaded: string[] = []
      await readJsonLines(res, signal, (line) => {
        const match = /Loaded image(?: ID)?: (\S+)/.exec(String(line['stream'] ?? ''))
        if (match?.[1] !== undefined) loaded.push(match[1])
      })
      return loaded
    } finally {
      file.destroy()
    }
  }

  /**
   * Registry pull of `image`; resolves when the engine reports the pull done, rejects with its error text.
   * `onProgress` hears the bytes downloaded over all layers (PullProgressTally) on every change: the
   * caller throttles.
   */
  async pull (image: string, auth: RegistryAuth | undefined, signal: AbortSignal, onProgress?: ByteReport): Promise<void> {
    const { fromImage, tag } = splitReference(image)
    const res = await this.#dial({
      path: '/images/create?',
      method: 'POST',
      options: tag === '' ? { fromImage } : { fromImage, tag },
      isStream: true,
      statusCodes: { 200: true, 404: 'not found', 500: 'server error' },
      abortSignal: signal,
      ...(auth === undefined ? {} : { authconfig: auth })
    }) as IncomingMessage
    const tally = new PullProgressTally()
    await readJsonLines(res, signal, (line) => {
      if (onProgress === undefined || !tally.line(line)) return
      const { doneBytes, totalBytes } = tally.progress()
      onProgress(doneBytes, totalBytes)
    })
  }

  async tag (id: string, ref: string): Promise<void> {
    const { fromImage, tag } = splitReference(ref)
    await this.#dial({
      path: `/images/${encodeRef(id)}/tag?`,
      method: 'POST',
      options: { repo: fromImage, tag: tag === '' ? 'latest' : tag },
      statusCodes: { 201: true, 200: true, 400: 'bad parameter', 404: 'no such image', 409: 'conflict', 500: 'server error' },
      abortSignal: this.#deadline()
    })
  }

  /** Removes an image (or one tag of it); never forced, so images in use or tagged elsewhere stay. */
  async remove (ref: string): Promise<void> {
    await this.#dial({
      path: `/images/${encodeRef(ref)}?`,
      method: 'DELETE',
      options: { force: 'false', noprune: 'false' },
      statusCodes: { 200: true, 404: 'no such image', 409: 'conflict', 500: 'server error' },
      abortSignal: this.#deadline()
    })
  }

  /** Ids of every (top-level) image in the engine: taken before a fetch to know what it added. */
  async imageIds (signal?: AbortSignal): Promise<Set<string>> {
    const list = await this.#dial({
      path: '/images/json', method: 'GET', statusCodes: { 200: true, 500: 'server error' }, abortSignal: this.#deadline(signal)
    }) as Array<{ Id?: string }>
    return new Set(list.map((i) => i.Id ?? '').filter((id) => id !== ''))
  }

  /** Ids of the images every container (running or not) was created from: the engine will not remove those. */
  async imagesInUse (): Promise<Set<string>> {
    const list = await this.#dial({
      path: '/containers/json?',
      method: 'GET',
      options: { all: 'true' },
      statusCodes: { 200: true, 400: 'bad parameter', 500: 'server error' },
      abortSignal: this.#deadline()
    }) as Array<{ ImageID?: string }>
    return new Set(list.map((c) => c.ImageID ?? '').filter((id) => id !== ''))
  }

  #deadline (signal?: AbortSignal): AbortSignal {
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    return signal === undefined ? timeout : AbortSignal.any([timeout, signal])
  }

  async #dial (options: DialOptions): Promise<unknown> {
    return await new Promise((resolve, reject) => {
      this.#docker.modem.dial(options as unknown as Parameters<Dockerode['modem']['dial']>[0], (err: unknown, data: unknown) => {
        if (err !== null && err !== undefined) reject(err as Error)
        else resolve(data)
      })
    })
  }
}

/** "host:5000/repo/name:tag" -> fromImage "host:5000/repo/name", tag "tag"; digests stay in fromImage. */
export function splitReference (ref: string): { fromImage: string, tag: string } {
  if (ref.includes('@')) return { fromImage: ref, tag: '' }
  const slash = ref.lastIndexOf('/')
  const colon = ref.lastIndexOf(':')
  if (colon > slash) return { fromImage: ref.slice(0, colon), tag: ref.slice(colon + 1) }
  return { fromImage: ref, tag: '' }
}

/**
 * One spelling per name, so tags can be compared across engines: Docker lists "inframind/echo:1",
 * Podman lists the same image as "localhost/inframind/echo:1" (loaded) or "docker.io/inframind/echo:1" (tagged).
 */
export function normaliseReference (ref: string): string {
  let name = ref.replace(/^(localhost|docker\.io|index\.docker\.io)\//, '').replace(/^library\//, '')
  const { tag } = splitReference(name)
  if (tag === '' && !name.includes('@')) name = `${name}:latest`
  return name
}

/** Refs go into the URL path: keep '/' and ':' (the engine expects them) but escape anything else odd. */
function encodeRef (ref: string): string {
  return ref.split('/').map((part) => encodeURIComponent(part).replace(/%3A/gi, ':').replace(/%40/g, '@')).join('/')
}

/**
 * Reads the engine's newline-delimited JSON progress stream. Load and pull answer 200 and report
 * failure inside the stream (`{"error": ...}`), so every line is checked.
 */
async function readJsonLines (res: IncomingMessage, signal: AbortSignal, onLine: (line: Record<string, unknown>) => void): Promise<void> {
  const abort = (): void => { res.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason))) }
  if (signal.aborted) abort()
  signal.addEventListener('abort', abort, { once: true })
  try {
    let buffered = ''
    const handle = (text: string): void => {
      if (text.trim() === '') return
      let line: Record<string, unknown>
      try {
        line = JSON.parse(text) as Record<string, unknown>
      } catch {
        return // progress bars and other non-JSON noise carry no verdict
      }
      if (line['error'] !== undefined || line['errorDetail'] !== undefined) {
        const detail = line['errorDetail'] as { message?: string } | undefined
        throw new Error(String(line['error'] ?? detail?.message ?? 'unknown engine error'))
      }
      onLine(line)
    }
    for await (const chunk of res) {
      buffered += String(chunk)
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      for (const text of lines) handle(text)
    }
    handle(buffered)
  } finally {
    signal.removeEventListener('abort', abort)
  }
}
