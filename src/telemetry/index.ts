import type { Startable } from '../types.ts'
import type { Logger } from './logger.ts'
import { createMetrics, type Metrics } from './metrics.ts'
import { metricsServer } from './metrics-server.ts'
import { systemSampler, type SystemSample } from './system.ts'

export { createLogger, silentLogger, type Logger } from './logger.ts'
export { createMetrics, type Metrics } from './metrics.ts'
export { systemSampler, type SystemSample } from './system.ts'

export interface TelemetryInit {
  metrics: { enabled: boolean, host: string, port: number }
}

export interface Telemetry extends Startable {
  /** The registry components register their metrics in (handed to them by the node's wiring). */
  readonly metrics: Metrics
  sample(): SystemSample
  metricsUrl(): string
}

/** Owns the metrics registry and serves it on loopback; samples this process's CPU and memory. */
export function telemetry (init: TelemetryInit) {
  return (components: { logger: Logger }): Telemetry => {
    const logger = components.logger.child({ component: 'telemetry' })
    const metrics = createMetrics()
    const sample = systemSampler()
    const server = init.metrics.enabled
      ? metricsServer({ host: init.metrics.host, port: init.metrics.port, registry: metrics.registry, logger })
      : undefined
    return {
      metrics,
      sample,
      metricsUrl: () => server?.url() ?? '',
      async start () {
        await server?.start()
      },
      async stop () {
        await server?.stop()
      }
    }
  }
}
