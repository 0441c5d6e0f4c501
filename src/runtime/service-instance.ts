/**
 * One incarnation of a service container: create, start, publish on 127.0.0.1, wait until ready,
 * then health-check it until it dies, turns unhealthy or the runtime stops. The monitor
 * (services.ts) decides what happens next; a restart is a new instance on a new port.
 */
import { Agent } from 'node:http'
import type { Readable } from 'node:stream'
import type Dockerode from 'dockerode'
import type { ContainerConfig, ServiceConfig } from '../config/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import { EXIT_SIGKILL, SERVICE_LOG_TAIL_BYTES, STARTUP_POLL_MS } from './constants.ts'
import { probeHealth } from './health.ts'
import { buildServiceCreateSpec, SERVICE_HOST_IP } from './sandbox.ts'
import { StreamDemuxer, TailBuffer } from './streams.ts'

export interface InstanceContext {
  docker: Dockerode
  engineTimeoutMs: number
  /** Limit of create + start + inspect (the warm-up has the service's own startup timeout). */
  startTimeoutMs: number
  runtimeId: string
  /** Labels the container as this node's, so a later start can remove it if this process dies. */
  nodeId: string | undefined
  logger: Logger
}

/** How an instance's life ended (or why it never became ready). */
export interface InstanceEnd {
  reason: string
  /** Ended by failed health checks (the monitor reports `unhealthy` before restarting). */
  unhealthy: boolean
}

/** How long to wait for the last output of a container that just exited, for its error message. */
const LOG_DRAIN_MS = 200

export class ServiceInstance {
  readonly #ctx: InstanceContext
  readonly #container: ContainerConfig
  readonly #service: ServiceConfig
  /** Aborted when the container exits, the runtime stops, or the instance is torn down. */
  readonly #life = new AbortController()
  readonly #tail = new TailBuffer(SERVICE_LOG_TAIL_BYTES)
  readonly #name: string
  readonly #spec: ReturnType<typeof buildServiceCreateSpec>
  #handle: Dockerode.Container | undefined
  #logs: Readable | undefined
  #logsEnded: Promise<void> = Promise.resolve()
  #exit: string | undefined
  readonly agent = new Agent({ keepAlive: true })
  hostPort = 0

  constructor (ctx: InstanceContext, container: ContainerConfig, imageId: string, stop: AbortSignal) {
    if (container.service === undefined) throw new TypeError(`container ${container.id} has no service block`)
    this.#ctx = ctx
    this.#container = container
    this.#service = container.service
    this.#spec = buildServiceCreateSpec({ container, imageId, runtimeId: ctx.runtimeId, nodeId: ctx.nodeId })
    this.#name = this.#spec.name
    if (stop.aborted) this.#life.abort()
    else stop.addEventListener('abort', () => { this.#life.abort() }, { once: true, signal: this.#life.signal })
  }

  get name (): string {
    return this.#name
  }

  /** Creates and starts the container and waits for its first 2xx health answer. Resolves undefined once ready. */
  async boot (): Promise<InstanceEnd | undefined> {
    const failed = (reason: string): InstanceEnd => ({ reason, unhealthy: false })
    const limit = new AbortController()
    const timer = setTimeout(() => { limit.abort() }, this.#ctx.startTimeoutMs)
    const onLife = (): void => { limit.abort() }
    this.#life.signal.addEventListener('abort', onLife, { once: true })
    const step = async <T>(what: string, op: () => Promise<T>): Promise<T | InstanceEnd> => {
      try {
        return await op()
      } catch (err) {
        if (this.#life.signal.aborted) return failed(this.#exit ?? 'stopped')
        if (limit.signal.aborted) return failed(`${what} took longer than runtime.start_timeout_ms (${this.#ctx.startTimeoutMs} ms)`)
        return failed(`${what} failed: ${(err as Error).message.trim()}`)
      }
    }
    try {
      const { name, ...body } = this.#spec
      // _query/_body: otherwise dockerode also serialises the whole body into the URL.
      const created = await step('create', async () => await this.#ctx.docker.createContainer(
        { _query: { name }, _body: body, abortSignal: limit.signal } as unknown as Dockerode.ContainerCreateOptions))
      if (isEnd(created)) return created
      const handle = created
      this.#handle = handle

      const logs = await step('attach', async () => await handle.attach({ stream: true, stdout: true, stderr: true, abortSignal: this.#life.signal }) as unknown as Readable)
      if (isEnd(logs)) return logs
      this.#follow(logs)
      // Registered before start so an exit right after start is never missed.
      this.#watchExit(handle)

      const started = await step('start', async () => { await handle.start({ abortSignal: limit.signal }); return true })
      if (isEnd(started)) return started
      const port = await step('inspect', async () => await this.#publishedPort(handle, limit.signal))
      if (isEnd(port)) return port
      if (port === 'exited') {
        // The exit watcher reports it (with the code) a moment later.
        await this.#sleep(LOG_DRAIN_MS)
        return this.#exit === undefined ? failed('the container stopped right after it started') : await this.#ended()
      }
      if (typeof port === 'string') return failed(port)
      this.hostPort = port
    } finally {
      clearTimeout(timer)
      this.#life.signal.removeEventListener('abort', onLife)
    }
    return await this.#ready()
  }

  /** Health checks every healthIntervalMs until the container exits, fails unhealthyThreshold checks in a row, or stops. */
  async watch (): Promise<InstanceEnd> {
    const { healthIntervalMs, healthTimeoutMs, unhealthyThreshold, healthPath } = this.#service
    const target = { agent: this.agent, port: this.hostPort, path: healthPath }
    let failures = 0
    for (;;) {
      if (!await this.#sleep(healthIntervalMs)) return await this.#ended()
      const problem = await probeHealth(target, healthTimeoutMs, this.#life.signal)
      if (this.#life.signal.aborted) return await this.#ended()
      if (problem === undefined) {
        failures = 0
        continue
      }
      failures++
      this.#ctx.logger.debug({ container: this.#container.id, failures, problem }, 'service health check failed')
      if (failures >= unhealthyThreshold) {
        return { reason: `${failures} health check(s) failed in a row (last: ${problem})`, unhealthy: true }
      }
    }
  }

  /** Stops watching, force-removes the container and closes connections. Safe to call more than once. */
  async teardown (): Promise<void> {
    this.#life.abort()
    this.agent.destroy()
    this.#logs?.destroy()
    this.hostPort = 0
    // By name: a create that timed out on our side may still have happened on the engine's.
    const handle = this.#handle ?? this.#ctx.docker.getContainer(this.#name)
    for (let attempt = 1; attempt <= 2; attempt++) {
      const limit = new AbortController()
      const timer = setTimeout(() => { limit.abort() }, this.#ctx.engineTimeoutMs)
      try {
        await handle.remove({ force: true, v: true, abortSignal: limit.signal })
        return
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode
        // 404: gone (or never created); 409: a removal is already in progress.
        if (status === 404 || status === 409) return
        if (attempt === 2) {
          this.#ctx.logger.warn({ container: this.#container.id, name: this.#name, err }, 'could not remove service container; the node removes it at its next start (inframind.node label)')
        }
      } finally {
        clearTimeout(timer)
      }
    }
  }

  /** Polls the health endpoint until the first 2xx, the startup timeout, an exit or a stop. */
  async #ready (): Promise<InstanceEnd | undefined> {
    const { startupTimeoutMs, healthTimeoutMs, healthPath } = this.#service
    const target = { agent: this.agent, port: this.hostPort, path: healthPath }
    const deadline = Date.now() + startupTimeoutMs
    let last = 'no answer yet'
    for (;;) {
      const left = deadline - Date.now()
      if (left <= 0) {
        return { reason: `not ready within startup_timeout_ms (${startupTimeoutMs} ms): ${last}${this.#lastOutput()}`, unhealthy: false }
      }
      const budget = Math.min(healthTimeoutMs, left)
      const problem = await probeHealth(target, budget, this.#life.signal)
      if (this.#life.signal.aborted) return await this.#ended()
      if (problem === undefined) return undefined
      // A last probe cut short by the deadline says less than the one before it.
      if (budget === healthTimeoutMs || last === 'no answer yet') last = problem
      if (!await this.#sleep(Math.min(STARTUP_POLL_MS, Math.max(0, deadline - Date.now())))) return await this.#ended()
    }
  }

  /** Why the life ended: the exit (with the last output) or a stop. */
  async #ended (): Promise<InstanceEnd> {
    if (this.#exit === undefined) return { reason: 'stopped', unhealthy: false }
    await Promise.race([this.#logsEnded, new Promise((resolve) => { setTimeout(resolve, LOG_DRAIN_MS) })])
    return { reason: this.#exit + this.#lastOutput(), unhealthy: false }
  }

  #lastOutput (): string {
    const tail = this.#tail.text().trim()
    if (tail === '') return ''
    // Stack frames say where, the lines around them say what: keep the latter.
    const lines = tail.split('\n').filter((line) => !/^\s+at /.test(line) && line.trim() !== '')
    return `; last output: ${lines.slice(-3).join(' | ')}`
  }

  #follow (logs: Readable): void {
    this.#logs = logs
    const demux = new StreamDemuxer((_kind, payload) => { this.#tail.add(payload) })
    logs.on('data', (chunk: Buffer) => { demux.push(chunk) })
    logs.on('error', () => {})
    this.#logsEnded = new Promise((resolve) => {
      logs.once('end', resolve)
      logs.once('close', resolve)
    })
  }

  #watchExit (handle: Dockerode.Container): void {
    const wait = handle.wait({ condition: 'next-exit', abortSignal: this.#life.signal }) as Promise<{ StatusCode: number }>
    wait.then((result) => {
      const code = result.StatusCode
      this.#exit = `the container exited with code ${code}` + (code === EXIT_SIGKILL ? ' (killed: out of memory, or by a signal)' : '')
      this.#life.abort()
    }, (err: unknown) => {
      if (this.#life.signal.aborted) return
      // Without a working wait the node cannot see a crash: treat it as one, so it is restarted.
      this.#exit = `the engine stopped reporting the container's state (${(err as Error).message})`
      this.#life.abort()
    })
  }

  /** The host port the engine chose, after checking it is bound to 127.0.0.1 and nothing else. */
  async #publishedPort (handle: Dockerode.Container, signal: AbortSignal): Promise<number | string> {
    const info = await handle.inspect({ abortSignal: signal })
    // A stopped container has no published ports: say it exited rather than blame the engine.
    if (!info.State.Running) return 'exited'
    const key = `${this.#service.port}/tcp`
    const bindings = (info.NetworkSettings.Ports as Record<string, Array<{ HostIp: string, HostPort: string }> | null> | undefined)?.[key] ?? []
    if (bindings.length === 0) return `the engine did not publish port ${key}`
    const exposed = bindings.find((b) => b.HostIp !== SERVICE_HOST_IP)
    if (exposed !== undefined) {
      return `the engine published port ${key} on ${exposed.HostIp === '' ? 'every interface' : exposed.HostIp}, not only ${SERVICE_HOST_IP}; refusing to serve it`
    }
    const port = Number(bindings[0]?.HostPort)
    if (!Number.isInteger(port) || port <= 0) return `the engine reported no host port for ${key}`
    return port
  }

  /** Resolves true after `ms`, false as soon as the instance's life ends. */
  async #sleep (ms: number): Promise<boolean> {
    const signal = this.#life.signal
    if (signal.aborted) return false
    return await new Promise((resolve) => {
      const done = (value: boolean): void => {
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      }
      const onAbort = (): void => { done(false) }
      const timer = setTimeout(() => { done(true) }, ms)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }
}

function isEnd (value: unknown): value is InstanceEnd {
  return typeof value === 'object' && value !== null && 'reason' in value && 'unhealthy' in value
}
