/**
 * Image status for status calls (GetInfo, ListContainers): one engine inspect per image per second at
 * most, however many callers ask. A status read never waits in line behind a busy engine more than once
 * per window, and a burst of status calls costs the engine one request. Runs never use this answer: they
 * resolve the image themselves (images.ts), so a stale "present" can only be a second out of date on a
 * status page, never run the wrong image.
 */
import type { ImageStatus } from './types.ts'

/** How long one engine answer about an image is reused for status calls. */
export const IMAGE_STATUS_TTL_MS = 1_000

interface Entry { atMs: number, status: Promise<ImageStatus> }

export class ImageStatusCache {
  readonly #inspect: (image: string) => Promise<ImageStatus>
  readonly #ttlMs: number
  readonly #entries = new Map<string, Entry>()

  constructor (inspect: (image: string) => Promise<ImageStatus>, ttlMs = IMAGE_STATUS_TTL_MS) {
    this.#inspect = inspect
    this.#ttlMs = ttlMs
  }

  async get (image: string): Promise<ImageStatus> {
    const now = Date.now()
    const cached = this.#entries.get(image)
    if (cached !== undefined && now - cached.atMs < this.#ttlMs) return await cached.status
    const status = this.#inspect(image)
    const entry = { atMs: now, status }
    this.#entries.set(image, entry)
    // A failed inspect is not remembered: the next caller asks the engine again.
    status.catch(() => { if (this.#entries.get(image) === entry) this.#entries.delete(image) })
    return await status
  }
}
