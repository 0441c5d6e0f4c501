/**
 * The life of one warm service container, from image to stop: ensure the image, start an instance,
 * serve while healthy, restart with exponential backoff when it dies or turns unhealthy, give up
 * after service.maxRestarts restarts that never got it healthy again.
 */
import type { ContainerConfig, ServiceConfig } from '../config/types.ts'
import type { ContainerState, ContainerStatus, ImageProgress, ImageResolver, RunRequest, RunResult } from './types.ts'
import { ServiceUnavailableError } from './errors.ts'
import { assertSafeUser, SERVICE_HOST_IP } from './sandbox.ts'
import { callService } from './service-call.ts'
import type { ServiceEndpoint } from './service-call.ts'
import { ServiceInstance } from './service-instance.ts'
import type { InstanceContext } from './service-instance.ts'

export interface MonitorContext extends InstanceContext {
  images: ImageResolver
  /** Throws when the container needs a GPU the node does not have. */
  assertGpu: (container: ContainerConfig) => Promise<void>
  /** Throws when the container asks for an OCI runtime (runsc) the engine does not have. */
  assertOciRuntime: (container: ContainerConfig) => Promise<void>
  /** Every state change: the runtime logs it, keeps it and tells its listeners. */
  changed: (status: ContainerStatus, detail: string) => void
}

export class ServiceMonitor {
  readonly container: ContainerConfig
  readonly #service: ServiceConfig
  readonly #ctx: MonitorContext
  #state: ContainerState = 'stopped'
  #restarts = 0
  #lastError = ''
  #hostPort = 0
  /** The image fetch's last progress, while pulling (status reads show it; it is no state change). */
  #pull: ImageProgress | undefined
  /** Set only while healthy: the hot path reads this one field. */
  #endpoint: ServiceEndpoint | undefined
  #stop = new AbortController()
  #loop: Promise<void> | undefined

  constructor (ctx: MonitorContext, container: ContainerConfig) {
    if (container.service === undefined) throw new TypeError(`container ${container.id} has mode service but no service block`)
    this.container = container
    this.#service = container.service
    this.#ctx = ctx
  }

  status (): ContainerStatus {
    const status: ContainerStatus = { id: this.container.id, mode: 'service', state: this.#state, restarts: this.#restarts, lastError: this.#lastError, hostPort: this.#hostPort }
    if (this.#state === 'pulling' && this.#pull !== undefined) status.pull = this.#pull
    return status
  }

  /** Starts the lifecycle in the background; never throws (failures end in state `failed`). */
  start (): void {
    if (this.#loop !== undefined) return
    this.#stop = new AbortController()
    this.#restarts = 0
    this.#lastError = ''
    this.#loop = this.#run().catch((err: unknown) => {
      // A bug, not a service failure; the service must still end in a state that says so.
      this.#set('failed', `internal error: ${(err as Error).message}`, (err as Error).message)
    })
  }

  async stop (): Promise<void> {
    const loop = this.#loop
    if (loop === undefined) return
    this.#stop.abort()
    await loop
    this.#loop = undefined
    this.#set('stopped', 'the runtime stopped')
  }

  /** One job: fails fast unless healthy. `signal` is the run's abort (caller or runtime stop). */
  async call (req: RunRequest, signal: AbortSignal, startedAtMs: number): Promise<RunResult> {
    const endpoint = this.#endpoint
    if (endpoint === undefined) throw new ServiceUnavailableError(this.container.id, this.#state, this.#lastError)
    return await callService(endpoint, req, signal, startedAtMs)
  }

  async #run (): Promise<void> {
    const signal = this.#stop.signal
    this.#set('pulling', `ensuring image ${this.container.image}`)
    let imageId: string
    try {
      assertSafeUser(this.container)
      if (this.container.resources.gpu) await this.#ctx.assertGpu(this.container)
      await this.#ctx.assertOciRuntime(this.container)
      imageId = await this.#ctx.images.ensure(this.container, { signal, onProgress: (progress) => { this.#pull = progress } })
    } catch (err) {
      if (signal.aborted) return
      const message = (err as Error).message
      this.#set('failed', message, message)
      return
    }
    // Restarts since the service was last healthy: past maxRestarts it is given up on.
    let unready = 0
    // Backoff exponent: reset once the service stayed healthy longer than the longest delay.
    let step = 0
    while (!signal.aborted) {
      this.#set('starting', this.#restarts === 0 ? `image ${imageId}` : `restart ${this.#restarts}`)
      const instance = new ServiceInstance(this.#ctx, this.container, imageId, signal)
      let healthySince = 0
      let end = await instance.boot()
      if (end === undefined) {
        healthySince = Date.now()
        unready = 0
        this.#hostPort = instance.hostPort
        this.#endpoint = { agent: instance.agent, port: instance.hostPort, imageId }
        this.#set('healthy', `serving on ${SERVICE_HOST_IP}:${instance.hostPort}`)
        end = await instance.watch()
      }
      this.#endpoint = undefined
      if (signal.aborted) {
        await instance.teardown()
        this.#hostPort = 0
        return
      }
      if (end.unhealthy) this.#set('unhealthy', end.reason, end.reason)
      if (healthySince !== 0 && Date.now() - healthySince >= this.#service.restartBackoffMaxMs) step = 0
      const giveUp = unready >= this.#service.maxRestarts
      const delay = Math.min(this.#service.restartBackoffMs * 2 ** step, this.#service.restartBackoffMaxMs)
      this.#hostPort = 0
      if (giveUp) {
        const reason = this.#restarts === 0 && healthySince === 0
          ? end.reason
          : `gave up after ${this.#restarts} restart(s) (service.max_restarts ${this.#service.maxRestarts}): ${end.reason}`
        this.#set('failed', reason, reason)
        await instance.teardown()
        return
      }
      unready++
      step++
      this.#restarts++
      this.#set('restarting', `${end.reason}; restart ${this.#restarts} in ${delay} ms`, end.reason)
      await instance.teardown()
      await sleep(delay, signal)
    }
  }

  #set (state: ContainerState, detail: string, lastError?: string): void {
    this.#state = state
    // A new pull starts from nothing; any other state has no pull to show.
    this.#pull = undefined
    if (lastError !== undefined) this.#lastError = lastError
    this.#ctx.changed(this.status(), detail)
  }
}

/** Waits `ms` unless `signal` aborts first; leaves no timer either way. */
async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}
