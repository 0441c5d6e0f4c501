import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ApiComponents } from '../api/types.ts'
import type { Startable } from '../types.ts'
import { containerEventToWire, jobEventToWire } from '../api/control-service.ts'
import { loadAssets, type Asset } from './assets.ts'
import { SNAPSHOT_INTERVAL_MS } from './constants.ts'
import { DashboardListenError, DashboardRequestError } from './errors.ts'
import { Refusals, Series } from './history.ts'
import { guard, SECURITY_HEADERS, sendError } from './http.ts'
import { apiAnswer, snapshot, type RouteContext } from './routes.ts'
import { EventHub } from './sse.ts'
import { jobView } from './views.ts'

export { DashboardListenError, DashboardRequestError } from './errors.ts'
export { CONTENT_SECURITY_POLICY } from './http.ts'

export interface DashboardInit {
  /** Loopback only (config validation refuses anything else). */
  host: string
  /** 0 = a port the OS picks (tests, devnets). */
  port: number
}

export interface DashboardComponents {
  /** What the control plane reads, read through the same builders (src/api/control-service.ts, mesh-service.ts). */
  view: ApiComponents
  /** Where the node's other listeners are once started (shown on the page); empty strings when off. */
  listeners?: () => Record<string, string>
}

export interface Dashboard extends Startable {
  /** http://host:port/ once started, '' before. */
  url(): string
}

/**
 * The read-only web dashboard: a page (web/), JSON routes for its first state and one event stream
 * (SSE) for everything after, all on a loopback listener. It holds no control: GET and HEAD only.
 */
export function dashboard (init: DashboardInit): (components: DashboardComponents) => Dashboard {
  return (components) => new DashboardServer(init, components)
}

class DashboardServer implements Dashboard {
  readonly #init: DashboardInit
  readonly #c: ApiComponents
  readonly #ctx: RouteContext
  readonly #hub: EventHub
  #server: http.Server | undefined
  #assets = new Map<string, Asset>()
  #url = ''
  #unsubscribe: Array<() => void> = []
  #timer: NodeJS.Timeout | undefined
  #snapshotting = false

  constructor (init: DashboardInit, components: DashboardComponents) {
    this.#init = init
    this.#c = components.view
    const listeners = components.listeners ?? (() => ({}))
    this.#ctx = { c: this.#c, series: new Series(), refusals: new Refusals(), listeners: () => ({ ...listeners(), dashboard: this.#url }) }
    this.#hub = new EventHub({ onFirst: () => { this.#startTicks() }, onLast: () => { this.#stopTicks() } })
  }

  url (): string {
    return this.#url
  }

  async start (): Promise<void> {
    if (this.#server !== undefined) return
    this.#assets = await loadAssets()
    const server = http.createServer((req, res) => { this.#handle(req, res) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => { reject(new DashboardListenError(this.#init.host, this.#init.port, err)) })
      server.listen(this.#init.port, this.#init.host, () => { server.removeAllListeners('error'); resolve() })
    })
    server.on('error', (err) => { this.#c.logger.warn({ err, component: 'dashboard' }, 'dashboard server error') })
    this.#server = server
    const addr = server.address() as AddressInfo
    this.#url = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}/`
    this.#listen()
    this.#c.logger.info({ component: 'dashboard', url: this.#url }, 'dashboard listening')
  }

  async stop (): Promise<void> {
    const server = this.#server
    this.#server = undefined
    this.#url = ''
    for (const off of this.#unsubscribe) off()
    this.#unsubscribe = []
    this.#stopTicks()
    this.#hub.close()
    if (server === undefined) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  /** The node's events, recorded for the charts and refusals and passed on to the open pages. */
  #listen (): void {
    const { jobs, runtime, identity } = this.#c
    const { series, refusals } = this.#ctx
    this.#unsubscribe = [
      jobs.on('job', (event) => {
        series.record(event)
        if (this.#hub.size === 0) return
        // The StreamEvents shape, plus the job's line when it ended (never its input or output).
        this.#hub.broadcast('job', { ...jobEventToWire(event), lane: event.lane, ...(event.job !== undefined ? { job: jobView(event.job, identity.nodeId) } : {}) })
      }),
      jobs.on('rejected', (r) => { this.#hub.broadcast('refusal', refusals.guardian(r)) }),
      jobs.on('refused', (r) => { refusals.refused(r) }),
      runtime.onContainerEvent((event) => { this.#hub.broadcast('container', { ...containerEventToWire(event), containerState: event.state }) })
    ]
  }

  #startTicks (): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => { this.#tick() }, SNAPSHOT_INTERVAL_MS)
    this.#timer.unref()
  }

  #stopTicks (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** One snapshot for every page; skipped while the previous one is still being read. */
  #tick (): void {
    if (this.#snapshotting) return
    this.#snapshotting = true
    snapshot(this.#ctx).then((s) => { this.#hub.broadcast('snapshot', s) }, (err: unknown) => {
      this.#c.logger.warn({ err, component: 'dashboard' }, 'dashboard snapshot failed')
    }).finally(() => { this.#snapshotting = false })
  }

  #handle (req: http.IncomingMessage, res: http.ServerResponse): void {
    let path = '/'
    let query = new URLSearchParams()
    try {
      const url = new URL(req.url ?? '/', 'http://dashboard.invalid')
      path = url.pathname
      query = url.searchParams
      guard(req, path)
      if (path === '/api/events') {
        if (req.method === 'HEAD') res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' }).end()
        else this.#hub.attach(req, res, SECURITY_HEADERS)
        return
      }
      if (path.startsWith('/api/')) {
        apiAnswer(this.#ctx, path, query).then((body) => {
          const text = JSON.stringify(body)
          res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) })
          res.end(text)
        }, (err: unknown) => { this.#fail(res, err) })
        return
      }
      const asset = this.#assets.get(path)
      if (asset === undefined) throw new DashboardRequestError(404, 'NOT_FOUND', `no such page: ${path}`)
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': asset.type, 'cache-control': 'no-cache', 'content-length': asset.body.byteLength })
      res.end(asset.body)
    } catch (err) {
      this.#fail(res, err)
    }
  }

  /** A 4xx says what to fix; anything else is the node's trouble: logged, and 503 without details. */
  #fail (res: http.ServerResponse, err: unknown): void {
    if (res.headersSent) {
      res.destroy()
      return
    }
    if (err instanceof DashboardRequestError) {
      sendError(res, err)
      return
    }
    this.#c.logger.warn({ err, component: 'dashboard' }, 'dashboard request failed')
    sendError(res, new DashboardRequestError(503, 'UNAVAILABLE', 'the node could not answer this now; try again (the node log has the cause)'))
  }
}
