/**
 * The subscriptions component's metric group, and the same counts in memory (stats()) so a test or a
 * status call reads them without a Prometheus registry.
 */
import { Gauge } from 'prom-client'
import type { Metrics } from '../telemetry/metrics.ts'
import { SUBSCRIPTION_STATES, type SubscriptionState } from './rules.ts'

/** Where a response or a refusal came from: this node's runner, or another coordinator's event. */
export type Source = 'local' | 'replicated'

export interface SubscriptionStats {
  /** Responses accepted, by source. */
  accepted: Record<Source, number>
  /** Refusals by code (rule codes, INVALID_RESULT, INVALID_EVENT), both sources together. */
  refused: Record<string, number>
  /** Intervals this node owned that ended with fewer than `redundancy` responses. */
  missed: number
  /** Jobs whose runJob failed (no result to judge). */
  jobsFailed: number
  /** Events replicate() failed to take. */
  replicationFailures: number
}

export interface SubscriptionMetrics {
  accepted(source: Source): void
  refused(code: string, source: Source): void
  missed(n: number): void
  jobFailed(): void
  replicationFailed(): void
  stats(): SubscriptionStats
}

export function subscriptionMetrics (metrics: Metrics | undefined, countByState: () => Record<SubscriptionState, number>): SubscriptionMetrics {
  const stats: SubscriptionStats = { accepted: { local: 0, replicated: 0 }, refused: {}, missed: 0, jobsFailed: 0, replicationFailures: 0 }
  const accepted = metrics?.counter({ name: 'inframind_subscription_responses_total', help: 'Subscription responses accepted, by source (local runner, replicated event)', labelNames: ['source'] })
  const refused = metrics?.counter({ name: 'inframind_subscription_refused_total', help: 'Subscription responses and events refused, by code and source', labelNames: ['code', 'source'] })
  const missed = metrics?.counter({ name: 'inframind_subscription_intervals_missed_total', help: 'Intervals this node owned that ended with fewer responses than their redundancy' })
  const failed = metrics?.counter({ name: 'inframind_subscription_jobs_failed_total', help: 'Subscription jobs that brought no result (runJob failed)' })
  const replication = metrics?.counter({ name: 'inframind_subscription_replication_failures_total', help: 'Subscription events the replication hook failed to take' })
  if (metrics !== undefined) {
    // A labelled gauge read at scrape time (Metrics.gauge has no labels), registered on the node's registry.
    const gauge = new Gauge({
      name: 'inframind_subscriptions',
      help: 'Subscriptions held, by state',
      labelNames: ['state'],
      registers: [metrics.registry],
      collect () {
        const counts = countByState()
        for (const state of SUBSCRIPTION_STATES) this.set({ state }, counts[state])
      }
    })
    void gauge
  }
  return {
    accepted (source) { stats.accepted[source]++; accepted?.inc({ source }) },
    refused (code, source) { stats.refused[code] = (stats.refused[code] ?? 0) + 1; refused?.inc({ code, source }) },
    missed (n) { if (n <= 0) return; stats.missed += n; missed?.inc(n) },
    jobFailed () { stats.jobsFailed++; failed?.inc() },
    replicationFailed () { stats.replicationFailures++; replication?.inc() },
    stats: () => structuredClone(stats)
  }
}
