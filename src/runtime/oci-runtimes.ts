/**
 * Which OCI runtimes the engine has (`Runtimes` of GET /info), so that a container asking for one
 * other than the default (runsc) is refused with a reason before anything is created, instead of
 * failing inside the engine, and is never run under the default runtime.
 */
import type Dockerode from 'dockerode'
import type { ContainerConfig } from '../config/types.ts'
import { OCI_RUNTIMES_REFRESH_MS } from './constants.ts'
import { EngineRequestError, OciRuntimeUnavailableError } from './errors.ts'

export interface OciRuntimesInit {
  docker: Dockerode
  engineTimeoutMs: number
  /** How long one answer of the engine is reused (default OCI_RUNTIMES_REFRESH_MS). */
  refreshMs?: number
}

export class OciRuntimes {
  readonly #docker: Dockerode
  readonly #engineTimeoutMs: number
  readonly #refreshMs: number
  #last: { atMs: number, names: Promise<string[]> } | undefined

  constructor (init: OciRuntimesInit) {
    this.#docker = init.docker
    this.#engineTimeoutMs = init.engineTimeoutMs
    this.#refreshMs = init.refreshMs ?? OCI_RUNTIMES_REFRESH_MS
  }

  /**
   * Resolves when the engine can run `container` under the runtime it asks for; throws
   * OciRuntimeUnavailableError when it cannot, EngineRequestError when the engine does not answer.
   * The default runtime (runc) is the engine's own and is not asked about.
   */
  async assert (container: ContainerConfig): Promise<void> {
    if (container.runtime === 'runc') return
    const names = await this.names()
    if (!names.includes(container.runtime)) throw new OciRuntimeUnavailableError(container.id, container.runtime, names)
  }

  /** The engine's runtime names, from an answer at most refreshMs old. */
  async names (): Promise<string[]> {
    const now = Date.now()
    if (this.#last !== undefined && now - this.#last.atMs < this.#refreshMs) return await this.#last.names
    const last = { atMs: now, names: this.#ask() }
    this.#last = last
    // A failed answer is not reused: the next check asks the engine again.
    last.names.catch(() => { if (this.#last === last) this.#last = undefined })
    return await last.names
  }

  async #ask (): Promise<string[]> {
    try {
      // The typings miss info's options argument.
      const info = await (this.#docker.info as (opts: { abortSignal: AbortSignal }) => Promise<{ Runtimes?: Record<string, unknown> }>)(
        { abortSignal: AbortSignal.timeout(this.#engineTimeoutMs) })
      return Object.keys(info.Runtimes ?? {}).sort()
    } catch (err) {
      throw new EngineRequestError('list the engine\'s OCI runtimes', { cause: err })
    }
  }
}
