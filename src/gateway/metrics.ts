import type { Metrics } from '../telemetry/metrics.ts'
import type { JobsService } from './types.ts'

/** Seconds; spans a warm container (~ms) to a slow model run (~a minute). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/**
 * The jobs service's metric group: finished jobs, latency, queue depth, in-flight work and refusals.
 * Labels are container ids, states, lanes and refusal codes, never inputs, outputs or origins.
 */
export function registerJobMetrics (metrics: Metrics, jobs: JobsService): () => void {
  const finished = metrics.counter({ name: 'inframind_jobs_total', help: 'Finished jobs by container, final status and lane (local = ran here, mesh = on a worker)', labelNames: ['container', 'status', 'lane'] })
  const latency = metrics.histogram({ name: 'inframind_job_latency_seconds', help: 'Job latency from start of run to finish', labelNames: ['container'], buckets: LATENCY_BUCKETS })
  metrics.gauge({ name: 'inframind_queue_depth', help: 'Jobs accepted and waiting for an executor slot or a mesh in-flight place', read: () => jobs.stats().queued })
  metrics.gauge({ name: 'inframind_active_jobs', help: 'Jobs running now (here, or awaiting their worker on the mesh)', read: () => jobs.stats().active })
  metrics.gauge({ name: 'inframind_mesh_jobs_in_flight', help: 'Mesh jobs awaiting their worker now (they hold no executor slot)', read: () => jobs.stats().meshInFlight })
  const refused = metrics.counter({ name: 'inframind_submissions_rejected_total', help: 'Job submissions refused, by reason code', labelNames: ['reason'] })
  const guardian = metrics.counter({ name: 'inframind_guardian_rejections_total', help: 'Jobs the Guardian refused, by rule and container', labelNames: ['reason', 'container'] })
  const offs = [
    jobs.on('job', (e) => {
      if (e.state !== 'success' && e.state !== 'failed') return
      finished.inc({ container: e.containerId, status: e.state, lane: e.lane })
      if (e.latencyMs !== undefined) latency.observe({ container: e.containerId }, e.latencyMs / 1000)
    }),
    jobs.on('refused', (r) => refused.inc({ reason: r.reason })),
    // Rejections carry the rule and container, never the origin of the job.
    jobs.on('rejected', (r) => guardian.inc({ reason: r.reason, container: r.containerId }))
  ]
  return () => { for (const off of offs) off() }
}
