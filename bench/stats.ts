/** Percentiles over a sample (nearest-rank). */
export function percentile (values: number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]
}

export interface Summary { p50: number, p90: number, p99: number, mean: number, min: number, max: number, n: number }

export function summarise (values: number[]): Summary {
  return {
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    mean: values.reduce((a, b) => a + b, 0) / Math.max(1, values.length),
    min: Math.min(...values),
    max: Math.max(...values),
    n: values.length
  }
}
