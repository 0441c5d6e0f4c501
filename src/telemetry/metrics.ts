import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** Seconds; spans a warm container (~ms) to a slow model run (~a minute). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

export interface NodeMetrics {
  registry: Registry
  jobs: Counter<'container' | 'status'>
  jobLatency: Histogram<'container'>
  queueDepth: Gauge
  activeJobs: Gauge
  rejected: Counter<'reason'>
  guardianRejections: Counter<'reason' | 'container'>
  assignmentsSent: Counter<'via'>
  gossipRejected: Counter<'topic' | 'code'>
  imageCacheHitRatio: Gauge
}

/** One registry per node (not prom-client's global one) so several nodes can live in one process. */
export function createMetrics (read: { queued: () => number, active: () => number, cacheHitRatio: () => number } = { queued: () => 0, active: () => 0, cacheHitRatio: () => 1 }): NodeMetrics {
  const registry = new Registry()
  // Default process metrics keep their standard names (process_*, nodejs_*) under an inframind_ prefix.
  collectDefaultMetrics({ register: registry, prefix: 'inframind_' })
  return {
    registry,
    jobs: new Counter({ name: 'inframind_jobs_total', help: 'Finished jobs by container and final status', labelNames: ['container', 'status'], registers: [registry] }),
    jobLatency: new Histogram({ name: 'inframind_job_latency_seconds', help: 'Job latency from start of run to finish', labelNames: ['container'], buckets: LATENCY_BUCKETS, registers: [registry] }),
    // Gauges are read from their source at scrape time, so they never lag behind it.
    queueDepth: new Gauge({ name: 'inframind_queue_depth', help: 'Jobs accepted and waiting for a slot', registers: [registry], collect () { this.set(read.queued()) } }),
    activeJobs: new Gauge({ name: 'inframind_active_jobs', help: 'Jobs running now', registers: [registry], collect () { this.set(read.active()) } }),
    rejected: new Counter({ name: 'inframind_submissions_rejected_total', help: 'Job submissions refused, by reason code', labelNames: ['reason'], registers: [registry] }),
    guardianRejections: new Counter({ name: 'inframind_guardian_rejections_total', help: 'Jobs the Guardian refused, by rule and container', labelNames: ['reason', 'container'], registers: [registry] }),
    assignmentsSent: new Counter({ name: 'inframind_assignments_sent_total', help: 'Assignments this scheduler sent, by path (grpc, gossip, gossip_fallback = gossip after gRPC failed)', labelNames: ['via'], registers: [registry] }),
    gossipRejected: new Counter({ name: 'inframind_gossip_rejected_total', help: 'Mesh messages rejected by validation, by topic and reason', labelNames: ['topic', 'code'], registers: [registry] }),
    imageCacheHitRatio: new Gauge({ name: 'inframind_image_cache_hit_ratio', help: 'Image lookups answered from the local engine, over all lookups', registers: [registry], collect () { this.set(read.cacheHitRatio()) } })
  }
}
