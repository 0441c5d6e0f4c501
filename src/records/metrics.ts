import type { Counter } from 'prom-client'
import type { Metrics } from '../telemetry/metrics.ts'

/**
 * The record metrics, labelled by log: several logs (archive, subscriptions) share one registry,
 * so the first to register a counter creates it and the others reuse it.
 */
export interface RecordMetrics {
  stored?: Counter<'log' | 'kind'>
  refused?: Counter<'log' | 'reason'>
  corrupt?: Counter<'log'>
  evicted?: Counter<'log'>
  synced?: Counter<'log'>
}

function shared<L extends string> (metrics: Metrics, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  const existing = metrics.registry.getSingleMetric(name)
  return (existing as Counter<L> | undefined) ?? metrics.counter({ name, help, labelNames })
}

export function recordMetrics (metrics: Metrics | undefined): RecordMetrics {
  if (metrics === undefined) return {}
  return {
    stored: shared(metrics, 'inframind_records_stored_total', 'Records a log stored (new ones; duplicates are not counted), by log and kind', ['log', 'kind']),
    refused: shared(metrics, 'inframind_records_refused_total', 'Records a log refused to store, by log and reason (the check that failed)', ['log', 'reason']),
    corrupt: shared(metrics, 'inframind_records_corrupt_total', 'Stored records that failed verification when read (disk corruption, tampering), dropped from the log', ['log']),
    evicted: shared(metrics, 'inframind_records_evicted_total', 'Records evicted by retention (over max bytes or older than max age), by log', ['log']),
    synced: shared(metrics, 'inframind_records_synced_total', 'Records a catch-up fetched from a peer and stored, by log', ['log'])
  }
}
