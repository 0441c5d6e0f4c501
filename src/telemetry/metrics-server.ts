import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import type { Logger } from './logger.ts'
import type { Startable } from '../types.ts'

export interface MetricsServer extends Startable {
  /** http://host:port/metrics once started, '' before. */
  url(): string
}

/** Prometheus text endpoint. Loopback by config default; it carries counts, never job data. */
export function metricsServer (init: { host: string, port: number, registry: Registry, logger: Logger }): MetricsServer {
  let server: http.Server | undefined
  let url = ''
  return {
    async start () {
      if (server !== undefined) return
      const s = http.createServer((req, res) => {
        if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n')
          return
        }
        init.registry.metrics().then((text) => {
          res.writeHead(200, { 'content-type': init.registry.contentType }).end(text)
        }, (err: unknown) => {
          init.logger.error({ err }, 'metrics collection failed')
          res.writeHead(500).end()
        })
      })
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject)
        s.listen(init.port, init.host, () => { s.off('error', reject); resolve() })
      })
      server = s
      const addr = s.address() as AddressInfo
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
      url = `http://${host}:${addr.port}/metrics`
      init.logger.info({ url }, 'metrics listening')
    },
    async stop () {
      const s = server
      server = undefined
      url = ''
      if (s === undefined) return
      s.closeAllConnections()
      await new Promise<void>((resolve) => s.close(() => resolve()))
    },
    url: () => url
  }
}
