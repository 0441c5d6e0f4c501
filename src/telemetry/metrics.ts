import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/**
 * The node's metrics registry, handed to each component that measures something; the component
 * registers its own group (names under `inframind_`). Telemetry serves the registry and never
 * imports the components it measures.
 */
export interface Metrics {
  readonly registry: Registry
  counter<L extends string = string>(opts: { name: string, help: string, labelNames?: readonly L[] }): Counter<L>
  /** A gauge read from its source at scrape time, so it never lags behind it. */
  gauge(opts: { name: string, help: string, read: () => number }): Gauge
  histogram<L extends string = string>(opts: { name: string, help: string, labelNames?: readonly L[], buckets: number[] }): Histogram<L>
}

/** One registry per node (not prom-client's global one) so several nodes can live in one process. */
export function createMetrics (): Metrics {
  const registry = new Registry()
  // Default process metrics keep their standard names (process_*, nodejs_*) under an inframind_ prefix.
  collectDefaultMetrics({ register: registry, prefix: 'inframind_' })
  return {
    registry,
    counter: (opts) => new Counter({ name: opts.name, help: opts.help, labelNames: opts.labelNames ?? [], registers: [registry] }),
    gauge: (opts) => new Gauge({ name: opts.name, help: opts.help, registers: [registry], collect () { this.set(opts.read()) } }),
    histogram: (opts) => new Histogram({ name: opts.name, help: opts.help, labelNames: opts.labelNames ?? [], buckets: opts.buckets, registers: [registry] })
  }
}
