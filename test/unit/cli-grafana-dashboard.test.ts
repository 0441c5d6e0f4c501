import test from 'ava'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { parse } from 'yaml'
import { DEFAULT_METRICS_HOST, DEFAULT_METRICS_PORT } from '../../src/config/constants.ts'

// docs/grafana-dashboard.json against the metrics the node registers: every series a panel queries,
// and every label it groups or filters by, must exist. The node's own metrics are read from their
// registrations in src/ (every registration names its metric literally, or this test says where one
// does not); the Node.js process metrics from prom-client itself, with the node's prefix.

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

interface Known { kind: 'counter' | 'gauge' | 'histogram' | 'summary', labels: Set<string> }

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : []
  })
}

/** Every metric registered in src/: `.counter({ name: 'x', labelNames: [...] })`, `new Gauge({ ... })`... */
function registeredMetrics (): { known: Map<string, Known>, unnamed: string[] } {
  const known = new Map<string, Known>()
  const unnamed: string[] = []
  const site = /(?:\.(counter|gauge|histogram)|new (Counter|Gauge|Histogram|Summary))(?:<[^>(]*>)?\(\{/g
  for (const file of sourceFiles(path.join(ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(site)) {
      const body = text.slice(m.index, text.indexOf('})', m.index))
      const name = /\bname: '([a-z_:][a-z0-9_:]*)'/.exec(body)?.[1]
      // Wrappers that pass their caller's name on register nothing themselves (their callers are read below).
      if (name === undefined) { if (!/name: opts\.name|\{ name, /.test(body)) unnamed.push(`${path.relative(ROOT, file)}: ${body.slice(0, 80)}`); continue }
      const labels = /labelNames: \[([^\]]*)\]/.exec(body)?.[1] ?? ''
      known.set(name, { kind: (m[1] ?? m[2]).toLowerCase() as Known['kind'], labels: new Set([...labels.matchAll(/'([^']+)'/g)].map((x) => x[1])) })
    }
    // Calls of such a wrapper: helper(metrics, 'inframind_x_total', 'help', ['label', ...]) (counters: src/records/metrics.ts).
    for (const m of text.matchAll(/\w+\(\w+, '(inframind_[a-z0-9_]+_total)', '(?:[^'\\]|\\.)*', \[([^\]]*)\]\)/g)) {
      known.set(m[1], { kind: 'counter', labels: new Set([...m[2].matchAll(/'([^']+)'/g)].map((x) => x[1])) })
    }
  }
  return { known, unnamed }
}

/** The series Prometheus stores for a metric, with the labels each carries. */
function series (known: Map<string, Known>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  for (const [name, k] of known) {
    if (k.kind === 'histogram') {
      out.set(`${name}_bucket`, new Set([...k.labels, 'le']))
      out.set(`${name}_sum`, k.labels)
      out.set(`${name}_count`, k.labels)
    } else if (k.kind === 'summary') {
      out.set(name, new Set([...k.labels, 'quantile']))
      out.set(`${name}_sum`, k.labels)
      out.set(`${name}_count`, k.labels)
    } else {
      out.set(name, k.labels)
    }
  }
  return out
}

async function defaultMetrics (): Promise<Map<string, Known>> {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'inframind_' })
  const known = new Map<string, Known>()
  for (const m of await registry.getMetricsAsJSON()) {
    const labels = new Set(m.values.flatMap((v) => Object.keys(v.labels)).filter((l) => l !== 'le' && l !== 'quantile'))
    known.set(m.name, { kind: m.type as unknown as Known['kind'], labels })
  }
  return known
}

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan'])
/** Labels every series has once scraped. */
const TARGET_LABELS = ['instance', 'job']

/** The metric names and the labels an expression uses (selectors and by/without clauses). */
function parseExpr (expr: string): { metrics: string[], labels: string[] } {
  const labels: string[] = []
  let rest = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""')
  rest = rest.replace(/\{([^}]*)\}/g, (_all, inner: string) => {
    for (const m of inner.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.push(m[1])
    return ' '
  })
  rest = rest.replace(/\b(?:by|without)\s*\(([^)]*)\)/g, (_all, inner: string) => {
    labels.push(...inner.split(',').map((s) => s.trim()).filter((s) => s !== ''))
    return ' '
  })
  rest = rest.replace(/\[[^\]]*\]/g, ' ')
  // Identifiers not followed by "(" (a function) and not operators or keywords are metric names.
  const metrics = [...rest.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)]
    .filter((m) => !/^\s*\(/.test(rest.slice(m.index + m[0].length)) && rest[m.index - 1] !== '$')
    .map((m) => m[0])
    .filter((w) => !PROMQL_WORDS.has(w.toLowerCase()))
  return { metrics, labels }
}

const dashboard = JSON.parse(readFileSync(path.join(ROOT, 'docs/grafana-dashboard.json'), 'utf8'))
const exprs = (): Array<{ panel: string, expr: string }> => [
  ...dashboard.panels.flatMap((p: any) => (p.targets ?? []).map((t: any) => ({ panel: p.title, expr: t.expr as string }))),
  ...dashboard.templating.list.filter((v: any) => v.type === 'query').map((v: any) => ({ panel: `$${v.name}`, expr: String(v.definition).replace(/^label_values\((.*),\s*\w+\)$/, '$1') }))
]

test('every metric registration in src/ names its metric, so this test sees them all', (t) => {
  const { known, unnamed } = registeredMetrics()
  t.deepEqual(unnamed, [])
  t.true(known.size >= 30, `${known.size} metrics found`)
  t.deepEqual([...known.get('inframind_jobs_total')?.labels ?? []].sort(), ['container', 'lane', 'status'])
  t.is(known.get('inframind_job_latency_seconds')?.kind, 'histogram')
  t.deepEqual([...known.get('inframind_records_stored_total')?.labels ?? []].sort(), ['kind', 'log'], 'through a wrapper')
})

test('every series and label the dashboard queries is one the node exports', async (t) => {
  const all = series(new Map([...registeredMetrics().known, ...await defaultMetrics()]))
  const used = new Set<string>()
  for (const { panel, expr } of exprs()) {
    const { metrics, labels } = parseExpr(expr)
    t.true(metrics.length > 0, `${panel}: no metric in ${expr}`)
    for (const metric of metrics) {
      t.true(all.has(metric), `${panel}: ${metric} is not a metric the node exports`)
      used.add(metric)
      for (const label of labels) t.true(all.get(metric)?.has(label) === true || TARGET_LABELS.includes(label), `${panel}: ${metric} has no label "${label}"`)
    }
  }
  // The dashboard covers the jobs service, the mesh, verification and the process at least.
  for (const metric of ['inframind_jobs_total', 'inframind_job_latency_seconds_bucket', 'inframind_gossip_rejected_total', 'inframind_verifications_total', 'inframind_process_resident_memory_bytes']) t.true(used.has(metric), metric)
})

test('the expression parser finds metrics and labels, and so would catch a misspelt one', (t) => {
  t.deepEqual(parseExpr('histogram_quantile(0.95, sum by (le, container) (rate(inframind_job_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))'),
    { metrics: ['inframind_job_latency_seconds_bucket'], labels: ['instance', 'le', 'container'] })
  t.deepEqual(parseExpr('time() - max(inframind_process_start_time_seconds)').metrics, ['inframind_process_start_time_seconds'])
  t.deepEqual(parseExpr('sum(rate(inframind_jobz_total[5m]))').metrics, ['inframind_jobz_total'])
})

test('the dashboard is well formed: unique panel ids, a datasource variable, every panel on the grid', (t) => {
  const ids = dashboard.panels.map((p: any) => p.id)
  t.is(new Set(ids).size, ids.length)
  t.true(dashboard.templating.list.some((v: any) => v.type === 'datasource' && v.name === 'datasource'))
  for (const p of dashboard.panels) {
    t.true(p.gridPos.x + p.gridPos.w <= 24, p.title)
    if (p.type !== 'row') {
      t.true(p.targets.length > 0, p.title)
      t.is(p.datasource.uid, '${datasource}', p.title)
    }
  }
})

test('docs/prometheus.yml scrapes /metrics at the default metrics listener', (t) => {
  const doc = parse(readFileSync(path.join(ROOT, 'docs/prometheus.yml'), 'utf8'))
  const job = doc.scrape_configs.find((j: any) => j.job_name === 'inframind')
  t.is(job.metrics_path, '/metrics')
  t.true(job.static_configs[0].targets.includes(`${DEFAULT_METRICS_HOST}:${DEFAULT_METRICS_PORT}`))
})
