/** The Docker (or Podman, through the same API) implementation of Runtime. */
import { randomBytes } from 'node:crypto'
import Dockerode from 'dockerode'
import type { ContainerConfig } from '../config/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { ContainerEvent, ContainerStatus, ImageResolver, ImageStatus, Runtime, RuntimeStats, RunRequest, RunResult } from './types.ts'
import {
  DEFAULT_DOCKER_SOCKET, DEFAULT_ENGINE_TIMEOUT_MS, DEFAULT_SERVICE_START_TIMEOUT_MS, ONESHOT_STATUS_REFRESH_MS, REAP_ENGINE_TIMEOUTS
} from './constants.ts'
import {
  EngineUnavailableError, GpuUnavailableError, InputTooLargeError, RunAbortedError, RuntimeNotStartedError, ServiceUnavailableError
} from './errors.ts'
import { executeContainer } from './execute.ts'
import type { ExecuteContext } from './execute.ts'
import { detectHardware } from './hardware.ts'
import type { HardwareInfo } from './hardware.ts'
import { LocalImageResolver } from './images.ts'
import { OciRuntimes } from './oci-runtimes.ts'
import { reapLeftovers } from './reap.ts'
import { assertSafeUser } from './sandbox.ts'
import type { Engine } from './sandbox.ts'
import { ServiceMonitor } from './services.ts'
import { ImageStatusCache } from './image-status.ts'
import { TypedEmitter } from '../events.ts'

export interface DockerRuntimeInit {
  /**
   * The node's id: every container is labelled with it, and start() removes the containers labelled
   * with it that an earlier run left behind (see LABEL_NODE). Default: none, so containers carry no
   * node label and nothing is removed at start (the runtime could not tell its leftovers from another's).
   */
  nodeId?: string
  /** Docker API unix socket path; default: DOCKER_HOST when set, else /var/run/docker.sock. */
  socket?: string
  /** Limit of engine calls other than the container's run itself (default 10 s). */
  engineTimeoutMs?: number
  /** Limit of creating and starting a service container, not its warm-up (default 60 s). */
  startTimeoutMs?: number
  /** The configured containers: `mode: service` ones are started by start(); all appear in containerStatuses(). */
  containers?: ContainerConfig[]
  /** Finds or fetches images and returns the verified id (default: the local engine only, see LocalImageResolver). */
  images?: ImageResolver
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
  readonly #nodeId: string | undefined
  #reapedAtStart = 0
  // Per runtime instance, so two nodes sharing an engine can tell their containers apart.
  readonly #runtimeId = randomBytes(6).toString('hex')
  readonly #activeContainers = new Set<string>()
  readonly #removals = new Set<Promise<void>>()
  readonly #runs = new Map<Promise<unknown>, AbortController>()
  readonly #local: LocalImageResolver
  readonly #ociRuntimes: OciRuntimes
  readonly #imageStatus: ImageStatusCache
  readonly #images: ImageResolver
  readonly #services = new Map<string, ServiceMonitor>()
  /** Image readiness of one-shot containers, from the last check. */
  readonly #oneShot = new Map<string, OneShotStatus>()
  readonly #order: string[] = []
  readonly #checks = new Set<Promise<void>>()
  readonly #events: TypedEmitter<{ container: ContainerEvent }>
  #hardware: Promise<HardwareInfo> | undefined
  /** Which engine answers, from GET /version at start(). */
  #engine: Engine = 'docker'
  #started = false

  constructor (init: DockerRuntimeInit, components: DockerRuntimeComponents) {
    const engine = resolveEngine(init.socket)
    this.#docker = new Dockerode(engine.options)
    this.#where = engine.where
    this.#engineTimeoutMs = init.engineTimeoutMs ?? DEFAULT_ENGINE_TIMEOUT_MS
    this.#nodeId = init.nodeId
    this.#logger = components.logger.child({ component: 'runtime' })
    this.#events = new TypedEmitter(this.#logger)
    this.#detectHardware = init.detectHardware ?? (async () => await detectHardware())
    this.#local = new LocalImageResolver(this.#docker, this.#engineTimeoutMs)
    this.#ociRuntimes = new OciRuntimes({ docker: this.#docker, engineTimeoutMs: this.#engineTimeoutMs })
    this.#imageStatus = new ImageStatusCache(async (image) => {
      const id = await this.#local.imageId(image)
      return { image, present: id !== undefined, digest: id ?? '' }
    })
    this.#images = init.images ?? this.#local
    const serviceContext = {
      docker: this.#docker,
      engineTimeoutMs: this.#engineTimeoutMs,
      startTimeoutMs: init.startTimeoutMs ?? DEFAULT_SERVICE_START_TIMEOUT_MS,
      runtimeId: this.#runtimeId,
      nodeId: this.#nodeId,
      logger: this.#logger,
      images: this.#images,
      assertGpu: async (container: ContainerConfig) => { await this.#assertGpu(container) },
      assertOciRuntime: async (container: ContainerConfig) => { await this.#ociRuntimes.assert(container) },
      changed: (status: ContainerStatus, detail: string) => { this.#changed(status, detail) }
    }
    for (const container of init.containers ?? []) {
      this.#order.push(container.id)
      if (container.mode === 'service') {
        this.#services.set(container.id, new ServiceMonitor(serviceContext, container))
      } else {
        this.#oneShot.set(container.id, { container, state: 'missing', lastError: 'not checked yet', checkedAtMs: 0, pulling: false })
      }
    }
  }

  async start (): Promise<void> {
    if (this.#started) return
    let version: Dockerode.DockerVersion
    try {
      // The typings miss ping's and version's options argument.
      await (this.#docker.ping as (opts: { abortSignal: AbortSignal }) => Promise<unknown>)({ abortSignal: AbortSignal.timeout(this.#engineTimeoutMs) })
      version = await (this.#docker.version as (opts: { abortSignal: AbortSignal }) => Promise<Dockerode.DockerVersion>)({ abortSignal: AbortSignal.timeout(this.#engineTimeoutMs) })
    } catch (err) {
      throw new EngineUnavailableError(this.#where, { cause: err })
    }
    this.#engine = engineOf(version)
    this.#logger.info({ engine: this.#where, kind: this.#engine, version: version.Version }, 'container engine answers')
    // Before anything is created (run() is refused until #started), and before the services start,
    // so a stale service container is gone before its successor comes up.
    await this.#reap()
    await this.#warnMissingOciRuntimes()
    this.#started = true
    // In the background: one broken service must not hold up (or fail) the node's boot.
    for (const monitor of this.#services.values()) monitor.start()
    for (const entry of this.#oneShot.values()) this.#checkOneShot(entry)
  }

  async stop (): Promise<void> {
    if (!this.#started) return
    this.#started = false
    // Each run kills and removes its own container when aborted; wait for all of them to finish.
    for (const controller of this.#runs.values()) controller.abort('the runtime is stopping')
    await Promise.allSettled(this.#runs.keys())
    await Promise.all([...this.#services.values()].map(async (monitor) => { await monitor.stop() }))
    while (this.#checks.size > 0) await Promise.allSettled([...this.#checks])
    await this.settled()
  }

  stats (): RuntimeStats {
    return { reapedAtStart: this.#reapedAtStart }
  }

  async #reap (): Promise<void> {
    this.#reapedAtStart = 0
    if (this.#nodeId === undefined) return
    const result = await reapLeftovers({
      docker: this.#docker,
      nodeId: this.#nodeId,
      engineTimeoutMs: this.#engineTimeoutMs,
      deadline: AbortSignal.timeout(REAP_ENGINE_TIMEOUTS * this.#engineTimeoutMs),
      keep: this.#activeContainers,
      logger: this.#logger
    })
    this.#reapedAtStart = result.removed
    if (result.found === 0) return
    this.#logger.info({ removed: result.removed, left: result.left }, `removed ${result.removed} containers left by an earlier run of this node`)
    if (result.left > 0) this.#logger.warn({ left: result.left }, `${result.left} containers left by an earlier run of this node are still there; the next start tries again`)
  }

  containerStatuses (): ContainerStatus[] {
    const statuses: ContainerStatus[] = []
    const now = Date.now()
    // In config order, so status listings read like the config.
    for (const id of this.#order) {
      const monitor = this.#services.get(id)
      if (monitor !== undefined) {
        statuses.push(monitor.status())
        continue
      }
      const entry = this.#oneShot.get(id)
      if (entry === undefined) continue
      // The node's prefetch (or a run) fetches one-shot images through the image cache, not through
      // this runtime: the cache says whether a fetch of this one is under way, and how far it is.
      const pull = entry.state === 'missing' ? this.#images.progress?.(entry.container) : undefined
      if (pull !== undefined) {
        entry.pulling = true
        statuses.push({ id: entry.container.id, mode: 'oneshot', state: 'pulling', restarts: 0, lastError: '', hostPort: 0, pull })
        continue
      }
      // Cheap: a missing image is looked at again (one inspect, in the background) at most every few
      // seconds, and at once when a fetch of it just ended.
      const pulled = entry.pulling
      entry.pulling = false
      if (entry.state === 'missing' && this.#started && (pulled || now - entry.checkedAtMs >= ONESHOT_STATUS_REFRESH_MS)) this.#checkOneShot(entry)
      statuses.push({ id: entry.container.id, mode: 'oneshot', state: entry.state, restarts: 0, lastError: entry.lastError, hostPort: 0 })
    }
    return statuses
  }

  onContainerEvent (listener: (event: ContainerEvent) => void): () => void {
    return this.#events.on('container', listener)
  }

  async settled (): Promise<void> {
    while (this.#removals.size > 0) await Promise.allSettled([...this.#removals])
  }

  activeContainers (): number {
    return this.#activeContainers.size
  }

  async imageStatus (image: string): Promise<ImageStatus> {
    this.#assertStarted()
    return await this.#imageStatus.get(image)
  }

  async run (req: RunRequest): Promise<RunResult> {
    this.#assertStarted()
    const startedAtMs = Date.now()
    const { container } = req
    if (req.input.byteLength > container.maxInputBytes) {
      throw new InputTooLargeError(container.id, req.input.byteLength, container.maxInputBytes)
    }
    let monitor: ServiceMonitor | undefined
    if (container.mode === 'service') {
      monitor = this.#services.get(container.id)
      if (monitor === undefined) {
        throw new ServiceUnavailableError(container.id, 'not configured', 'this runtime was not given the container at init, so it never started it')
      }
    } else {
      assertSafeUser(container)
    }
    if (req.signal?.aborted === true) throw new RunAbortedError(abortText(req.signal))

    const controller = new AbortController()
    const forward = (): void => { controller.abort(abortText(req.signal)) }
    req.signal?.addEventListener('abort', forward, { once: true })
    const run = monitor === undefined
      ? this.#verifyAndRun(req, controller.signal, startedAtMs)
      : monitor.call(req, controller.signal, startedAtMs)
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
    await this.#assertOciRuntime(container)
    const imageId = await this.#ensureImage(container, signal)
    const ctx: ExecuteContext = {
      docker: this.#docker,
      engineTimeoutMs: this.#engineTimeoutMs,
      runtimeId: this.#runtimeId,
      nodeId: this.#nodeId,
      logger: this.#logger,
      active: this.#activeContainers,
      removals: this.#removals,
      engine: this.#engine
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

  /** The verified image id, through the resolver; the outcome also becomes the container's readiness. */
  async #ensureImage (container: ContainerConfig, signal: AbortSignal): Promise<string> {
    const known = this.#oneShot.get(container.id)
    // Only a run of the configured image says something about the configured container's readiness.
    const entry = known?.container.image === container.image && known.container.digest === container.digest ? known : undefined
    try {
      const id = await this.#images.ensure(container, { signal })
      if (entry !== undefined) this.#oneShotChecked(entry, 'ready', '')
      return id
    } catch (err) {
      if (entry !== undefined && !signal.aborted) this.#oneShotChecked(entry, 'missing', (err as Error).message)
      throw err
    }
  }

  /** A local-only look at a one-shot container's image (never fetches: that is the image cache's prefetch). */
  #checkOneShot (entry: OneShotStatus): void {
    entry.checkedAtMs = Date.now()
    const check = this.#ociRuntimes.assert(entry.container).then(async () => await this.#local.ensure(entry.container)).then(
      () => { this.#oneShotChecked(entry, 'ready', '') },
      (err: unknown) => { this.#oneShotChecked(entry, 'missing', (err as Error).message) }
    ).finally(() => { this.#checks.delete(check) })
    this.#checks.add(check)
  }

  #oneShotChecked (entry: OneShotStatus, state: 'ready' | 'missing', lastError: string): void {
    entry.checkedAtMs = Date.now()
    const changed = entry.state !== state
    entry.state = state
    entry.lastError = lastError
    if (changed) {
      this.#changed({ id: entry.container.id, mode: 'oneshot', state, restarts: 0, lastError, hostPort: 0 }, lastError === '' ? 'image present' : lastError)
    }
  }

  /** Logs a state change and tells every listener; a throwing listener never breaks the runtime. */
  #changed (status: ContainerStatus, detail: string): void {
    this.#logger.info({ container: status.id, state: status.state, restarts: status.restarts, hostPort: status.hostPort, detail }, 'container state')
    const event: ContainerEvent = { containerId: status.id, state: status.state, detail, atMs: Date.now() }
    this.#events.emit('container', event)
  }

  /** A one-shot container whose runtime is missing is not ready either, whatever its image. */
  async #assertOciRuntime (container: ContainerConfig): Promise<void> {
    try {
      await this.#ociRuntimes.assert(container)
    } catch (err) {
      const entry = this.#oneShot.get(container.id)
      if (entry?.container.runtime === container.runtime) this.#oneShotChecked(entry, 'missing', (err as Error).message)
      throw err
    }
  }

  /**
   * Says at start, with how to fix it, which configured containers ask for a runtime the engine lacks.
   * Not a failed start: the node still serves its other containers, and these fail each job with the
   * same reason (OCI_RUNTIME_UNAVAILABLE) until the runtime is registered.
   */
  async #warnMissingOciRuntimes (): Promise<void> {
    const wanting = [...this.#oneShot.values()].map((e) => e.container)
      .concat([...this.#services.values()].map((m) => m.container))
      .filter((c) => c.runtime !== 'runc')
    for (const container of wanting) {
      try {
        await this.#ociRuntimes.assert(container)
      } catch (err) {
        this.#logger.warn({ container: container.id, runtime: container.runtime, err: (err as Error).name }, (err as Error).message)
      }
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

interface OneShotStatus {
  container: ContainerConfig
  state: 'ready' | 'missing'
  lastError: string
  checkedAtMs: number
  /** The last status read found a fetch of its image under way. */
  pulling: boolean
}

/** Podman's Docker-compatible service names itself among the components of GET /version. */
export function engineOf (version: Dockerode.DockerVersion): Engine {
  // Optional in practice: old Docker engines and other compatible servers leave it out.
  const components: Array<{ Name?: string }> = version.Components ?? []
  return components.some((c) => /podman/i.test(c.Name ?? '')) ? 'podman' : 'docker'
}

function abortText (signal: AbortSignal | undefined): string {
  const reason: unknown = signal?.reason
  if (reason instanceof Error) return reason.message
  return typeof reason === 'string' && reason !== '' ? reason : 'aborted by the caller'
}
