/** The Docker (or Podman, through the same API) implementation of Runtime. */
import { randomBytes } from 'node:crypto'
import Dockerode from 'dockerode'
import type { ContainerConfig } from '../config/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { ImageStatus, Runtime, RunRequest, RunResult } from './types.ts'
import { DEFAULT_DOCKER_SOCKET, DEFAULT_ENGINE_TIMEOUT_MS } from './constants.ts'
import {
  EngineRequestError, EngineUnavailableError, GpuUnavailableError, ImageDigestMismatchError, ImageNotFoundError,
  InputTooLargeError, RunAbortedError, RuntimeNotStartedError
} from './errors.ts'
import { executeContainer } from './execute.ts'
import type { ExecuteContext } from './execute.ts'
import { detectHardware } from './hardware.ts'
import type { HardwareInfo } from './hardware.ts'
import { assertSafeUser } from './sandbox.ts'

export interface DockerRuntimeInit {
  /** Docker API unix socket path; default: DOCKER_HOST when set, else /var/run/docker.sock. */
  socket?: string
  /** Limit of engine calls other than the container's run itself (default 10 s). */
  engineTimeoutMs?: number
  /** Hardware probe used for GPU checks (default: detectHardware, run once on first GPU job). */
  detectHardware?: () => Promise<HardwareInfo>
}

export interface DockerRuntimeComponents {
  logger: Logger
}

export function dockerRuntime (init: DockerRuntimeInit = {}): (components: DockerRuntimeComponents) => Runtime {
  return (components) => new DockerRuntime(init, components)
}

/** Where the engine is, as a dockerode option and as text for messages. */
export function resolveEngine (socket?: string): { options: Dockerode.DockerOptions, where: string } {
  if (socket !== undefined && socket !== '') {
    const path = socket.replace(/^unix:\/\//, '')
    return { options: { socketPath: path }, where: `unix://${path}` }
  }
  const host = process.env['DOCKER_HOST']
  // dockerode reads DOCKER_HOST itself (unix:// and tcp://) when given no options.
  if (host !== undefined && host !== '') return { options: {}, where: host }
  return { options: { socketPath: DEFAULT_DOCKER_SOCKET }, where: `unix://${DEFAULT_DOCKER_SOCKET}` }
}

class DockerRuntime implements Runtime {
  readonly #docker: Dockerode
  readonly #where: string
  readonly #engineTimeoutMs: number
  readonly #logger: Logger
  readonly #detectHardware: () => Promise<HardwareInfo>
  // Per runtime instance, so two nodes sharing an engine can tell their containers apart.
  readonly #runtimeId = randomBytes(6).toString('hex')
  readonly #activeContainers = new Set<string>()
  readonly #removals = new Set<Promise<void>>()
  readonly #runs = new Map<Promise<unknown>, AbortController>()
  #hardware: Promise<HardwareInfo> | undefined
  #started = false

  constructor (init: DockerRuntimeInit, components: DockerRuntimeComponents) {
    const engine = resolveEngine(init.socket)
    this.#docker = new Dockerode(engine.options)
    this.#where = engine.where
    this.#engineTimeoutMs = init.engineTimeoutMs ?? DEFAULT_ENGINE_TIMEOUT_MS
    this.#logger = components.logger.child({ component: 'runtime' })
    this.#detectHardware = init.detectHardware ?? (async () => await detectHardware())
  }

  async start (): Promise<void> {
    if (this.#started) return
    try {
      // The typings miss ping's options argument.
      await (this.#docker.ping as (opts: { abortSignal: AbortSignal }) => Promise<unknown>)({ abortSignal: AbortSignal.timeout(this.#engineTimeoutMs) })
    } catch (err) {
      throw new EngineUnavailableError(this.#where, { cause: err })
    }
    this.#started = true
    this.#logger.debug({ engine: this.#where }, 'docker engine answers')
  }

  async stop (): Promise<void> {
    if (!this.#started) return
    this.#started = false
    // Each run kills and removes its own container when aborted; wait for all of them to finish.
    for (const controller of this.#runs.values()) controller.abort('the runtime is stopping')
    await Promise.allSettled(this.#runs.keys())
    await this.settled()
  }

  async settled (): Promise<void> {
    while (this.#removals.size > 0) await Promise.allSettled([...this.#removals])
  }

  activeContainers (): number {
    return this.#activeContainers.size
  }

  async imageStatus (image: string): Promise<ImageStatus> {
    this.#assertStarted()
    const id = await this.#imageId(image)
    return { image, present: id !== undefined, digest: id ?? '' }
  }

  async run (req: RunRequest): Promise<RunResult> {
    this.#assertStarted()
    const startedAtMs = Date.now()
    const { container } = req
    assertSafeUser(container)
    if (req.input.byteLength > container.maxInputBytes) {
      throw new InputTooLargeError(container.id, req.input.byteLength, container.maxInputBytes)
    }
    if (req.signal?.aborted === true) throw new RunAbortedError(abortText(req.signal))

    const controller = new AbortController()
    const forward = (): void => { controller.abort(abortText(req.signal)) }
    req.signal?.addEventListener('abort', forward, { once: true })
    const run = this.#verifyAndRun(req, controller.signal, startedAtMs)
    this.#runs.set(run, controller)
    try {
      return await run
    } finally {
      this.#runs.delete(run)
      req.signal?.removeEventListener('abort', forward)
    }
  }

  async #verifyAndRun (req: RunRequest, signal: AbortSignal, startedAtMs: number): Promise<RunResult> {
    const { container } = req
    if (container.resources.gpu) await this.#assertGpu(container)
    const imageId = await this.#verifiedImage(container)
    const ctx: ExecuteContext = {
      docker: this.#docker,
      engineTimeoutMs: this.#engineTimeoutMs,
      runtimeId: this.#runtimeId,
      logger: this.#logger,
      active: this.#activeContainers,
      removals: this.#removals
    }
    try {
      const result = await executeContainer(ctx, req, imageId, signal, startedAtMs)
      this.#logger.debug({ job: req.jobId, container: container.id, ms: result.finishedAtMs - startedAtMs }, 'container run finished')
      return result
    } catch (err) {
      this.#logger.debug({ job: req.jobId, container: container.id, err: (err as Error).name }, 'container run failed')
      throw err
    }
  }

  /** The image id to run: only ever the id the engine reports for the tag, and only if it is the pinned one. */
  async #verifiedImage (container: ContainerConfig): Promise<string> {
    const id = await this.#imageId(container.image)
    if (id === undefined) throw new ImageNotFoundError(container.image)
    if (id !== container.digest) throw new ImageDigestMismatchError(container.image, container.digest, id)
    return id
  }

  async #imageId (image: string): Promise<string | undefined> {
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

  async #assertGpu (container: ContainerConfig): Promise<void> {
    this.#hardware ??= this.#detectHardware()
    const hardware = await this.#hardware
    if (hardware.gpus.length === 0) throw new GpuUnavailableError(container.id)
  }

  #assertStarted (): void {
    if (!this.#started) throw new RuntimeNotStartedError()
  }
}

function abortText (signal: AbortSignal | undefined): string {
  const reason: unknown = signal?.reason
  if (reason instanceof Error) return reason.message
  return typeof reason === 'string' && reason !== '' ? reason : 'aborted by the caller'
}
