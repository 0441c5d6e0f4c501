import type { Orchestrator } from '../orchestrator/types.ts'
import type { ImageCache } from '../images/types.ts'
import type { Mesh } from '../mesh/index.ts'
import type { Scheduler } from '../scheduler/index.ts'
import type { Startable } from '../types.ts'
import type { Logger } from './logger.ts'
import { createMetrics, type NodeMetrics } from './metrics.ts'
import { metricsServer } from './metrics-server.ts'
import { systemSampler, type SystemSample } from './system.ts'

export { createLogger, silentLogger, type Logger } from './logger.ts'
export { createMetrics, type NodeMetrics } from './metrics.ts'
export { systemSampler, type SystemSample } from './system.ts'

export interface TelemetryInit {
  metrics: { enabled: boolean, host: string, port: number }
}

export interface Telemetry extends Startable {
  readonly metrics: NodeMetrics
  sample(): SystemSample
  metricsUrl(): string
}

/** Keeps Prometheus metrics in step with the orchestrator's job events and serves them. */
export function telemetry (init: TelemetryInit) {
  return (components: { orchestrator: Orchestrator, logger: Logger, images?: ImageCache, mesh?: Mesh, scheduler?: Scheduler }): Telemetry => {
    const logger = components.logger.child({ component: 'telemetry' })
    const metrics = createMetrics({
      queued: () => components.orchestrator.stats().queued,
      active: () => components.orchestrator.stats().active,
      cacheHitRatio: () => components.images?.stats().hitRatio ?? 1
    })
    const sample = systemSampler()
    const server = init.metrics.enabled
      ? metricsServer({ host: init.metrics.host, port: init.metrics.port, registry: metrics.registry, logger })
      : undefined
    let unsubscribe: (() => void) | undefined
    let others: Array<() => void> = []


    return {
      metrics,
      sample,
      metricsUrl: () => server?.url() ?? '',
      async start () {
        if (unsubscribe !== undefined) return
        unsubscribe = components.orchestrator.onEvent((event) => {
          if (event.state === 'success' || event.state === 'failed') {
            metrics.jobs.inc({ container: event.containerId, status: event.state })
            if (event.latencyMs !== undefined) metrics.jobLatency.observe({ container: event.containerId }, event.latencyMs / 1000)
          }
        })
        // Rejections carry the rule and container, never the origin of the job or message.
        others = [components.orchestrator.onRejected((r) => metrics.guardianRejections.inc({ reason: r.reason, container: r.containerId }))]
        if (components.mesh !== undefined) others.push(components.mesh.onRejected((r) => metrics.gossipRejected.inc({ topic: r.topic, code: r.code })))
        if (components.scheduler !== undefined) others.push(components.scheduler.onAssigned((a) => metrics.assignmentsSent.inc({ via: a.via })))
        await server?.start()
      },
      async stop () {
        unsubscribe?.()
        unsubscribe = undefined
        for (const o of others) o()
        others = []
        await server?.stop()
      }
    }
  }
}
