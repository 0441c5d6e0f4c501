// Throughput and latency over the last minutes, one point per bucket (GET /api/series, then the
// newest buckets with every snapshot). uPlot draws on a canvas and styles through the CSSOM, so it
// runs under the page's CSP.
import uPlot from '/vendor/uPlot.esm.js'
import { byId, fill } from './dom.js'

let bucketMs = 5000
/** How far back the charts go (as far as the server keeps). */
let windowMs = 15 * 60_000
/** Points by bucket start (ms). */
const points = new Map()
let throughput
let latency

function size (el) {
  return { width: Math.max(280, el.clientWidth), height: 180 }
}

export function initCharts (series) {
  bucketMs = series.bucketMs
  windowMs = series.windowMs
  if (throughput !== undefined) {
    // A reconnect: the server's history replaces what the page had.
    points.clear()
    updateCharts(series.points)
    return
  }
  for (const p of series.points) points.set(p.t, p)
  fill(byId('chart-span'), `(up to the last ${Math.round(windowMs / 60_000)} min, one point per ${bucketMs / 1000} s)`)
  const tEl = byId('chart-throughput')
  const lEl = byId('chart-latency')
  const x = { stroke: '#8b949e', grid: { stroke: '#21262d' }, ticks: { stroke: '#30363d' } }
  const y = (values) => ({ ...x, size: 56, values: (_u, ticks) => ticks.map(values) })
  // The legend names the series; values on hover would be noise on a live chart.
  const legend = { live: false }
  throughput = new uPlot({
    ...size(tEl),
    axes: [x, y((v) => String(Math.round(v * 100) / 100))],
    legend,
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.15)] } },
    series: [{}, { label: 'succeeded/s', stroke: '#3fb950', fill: 'rgba(63,185,80,0.15)', width: 2 }, { label: 'failed/s', stroke: '#f85149', width: 2 }]
  }, data().throughput, tEl)
  latency = new uPlot({
    ...size(lEl),
    axes: [x, y((v) => v >= 1000 ? `${Math.round(v / 100) / 10} s` : `${Math.round(v)} ms`)],
    legend,
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(10, max * 1.15)] } },
    series: [{}, { label: 'p50', stroke: '#58a6ff', width: 2, spanGaps: true }, { label: 'p95', stroke: '#d29922', width: 2, dash: [6, 4], spanGaps: true }]
  }, data().latency, lEl)
  window.addEventListener('resize', () => {
    throughput.setSize(size(tEl))
    latency.setSize(size(lEl))
  })
}

/** The newest buckets from a snapshot: replaced by start time, the oldest dropped past the window. */
export function updateCharts (latest) {
  if (throughput === undefined) return
  for (const p of latest) points.set(p.t, p)
  const keep = [...points.keys()].sort((a, b) => a - b)
  const oldest = keep.length > 0 ? keep[keep.length - 1] - windowMs : 0
  for (const t of keep) if (t <= oldest) points.delete(t)
  const d = data()
  throughput.setData(d.throughput)
  latency.setData(d.latency)
}

function data () {
  const list = [...points.values()].sort((a, b) => a.t - b.t)
  const xs = list.map((p) => p.t / 1000)
  const perSecond = bucketMs / 1000
  return {
    throughput: [xs, list.map((p) => p.succeeded / perSecond), list.map((p) => p.failed / perSecond)],
    // A bucket without finished jobs has no latency: a gap, not a zero.
    latency: [xs, list.map((p) => p.succeeded + p.failed > 0 ? p.p50 : null), list.map((p) => p.succeeded + p.failed > 0 ? p.p95 : null)]
  }
}
