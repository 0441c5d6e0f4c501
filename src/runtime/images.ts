/** The default image check: the local engine's image for the tag, accepted only with the pinned id. */
import type Dockerode from 'dockerode'
import type { ContainerConfig } from '../config/types.ts'
import type { ImageResolver } from './types.ts'
import { EngineRequestError, ImageDigestMismatchError, ImageNotFoundError } from './errors.ts'

/** Never fetches anything: a missing image is ImageNotFoundError (the image cache, when plugged in, fetches). */
export class LocalImageResolver implements ImageResolver {
  readonly #docker: Dockerode
  readonly #engineTimeoutMs: number

  constructor (docker: Dockerode, engineTimeoutMs: number) {
    this.#docker = docker
    this.#engineTimeoutMs = engineTimeoutMs
  }

  /** The image id to run: only ever the id the engine reports for the tag, and only if it is the pinned one. */
  async ensure (container: ContainerConfig): Promise<string> {
    const id = await this.imageId(container.image)
    if (id === undefined) throw new ImageNotFoundError(container.image)
    if (id !== container.digest) throw new ImageDigestMismatchError(container.image, container.digest, id)
    return id
  }

  /** The engine's id for `image`, or undefined when the engine does not have it. */
  async imageId (image: string): Promise<string | undefined> {
    try {
      // dockerode's Image.inspect takes no abort signal, so dial the same request with one.
      const info = await new Promise<{ Id: string }>((resolve, reject) => {
        this.#docker.modem.dial({
          path: `/images/${image}/json`,
          method: 'GET',
          abortSignal: AbortSignal.timeout(this.#engineTimeoutMs),
          statusCodes: { 200: true, 404: 'no such image', 500: 'server error' }
        } as unknown as Parameters<Dockerode['modem']['dial']>[0], (err: unknown, data: unknown) => {
          if (err !== null && err !== undefined) reject(err)
          else resolve(data as { Id: string })
        })
      })
      return info.Id
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined
      throw new EngineRequestError(`inspect image ${image}`, { cause: err })
    }
  }
}
