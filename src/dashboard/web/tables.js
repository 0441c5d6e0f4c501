// Counters, containers, reputation and Guardian refusals: each redrawn whole from the latest state.
import { h, fill, byId } from './dom.js'
import { ago, bytes, clock, ms, pct, shortHash, shortId } from './format.js'

export function renderCounters (status) {
  const card = (label, value, cls) => h('div', { class: `card ${cls ?? ''}` }, h('div', { class: 'value' }, value), h('div', { class: 'label' }, label))
  fill(byId('counters'),
    card('succeeded', String(status.succeeded), 'ok'),
    card('failed', String(status.failed), status.failed > 0 ? 'bad' : ''),
    card('running', String(status.activeJobs)),
    card('queued', String(status.queuedJobs)),
    card('mesh in flight', String(status.meshJobsInFlight)),
    card('avg latency (last 50)', ms(status.avgLatencyMs)),
    card('Guardian refusals', String(status.guardianRejections), status.guardianRejections > 0 ? 'warn' : ''),
    card('CPU (node process)', pct(status.cpuPercent)),
    card('memory (RSS)', bytes(status.rssBytes)),
    card('image cache hits', pct(100 * status.imageCacheHitRatio))
  )
}

/** Containers by id, kept so a container event can change one state between snapshots. */
const containers = new Map()

export function loadContainers (list) {
  containers.clear()
  for (const c of list) containers.set(c.id, c)
  renderContainers()
}

export function containerEvent (e) {
  const c = containers.get(e.containerId)
  if (c === undefined) return
  c.state = e.containerState
  if (e.containerState === 'failed' || e.containerState === 'unhealthy' || e.containerState === 'restarting') c.lastError = e.detail
  renderContainers()
}

function renderContainers () {
  const rows = [...containers.values()].map((c) => h('tr', { 'data-container': c.id, 'data-state': c.state },
    h('td', { class: 'mono' }, c.id, c.description ? h('div', { class: 'dim small' }, c.description) : null),
    h('td', {}, c.mode),
    h('td', {}, h('span', { class: `cstate cstate-${c.state}` }, c.state), c.state === 'pulling' && c.pullDoneBytes > 0 ? ` ${bytes(c.pullDoneBytes)}${c.pullTotalBytes > 0 ? ` of ${bytes(c.pullTotalBytes)}` : ''}` : ''),
    h('td', { class: 'mono' }, c.image),
    h('td', { class: 'mono', title: c.digest }, shortHash(c.digest.replace(/^sha256:/, ''))),
    h('td', { class: 'num' }, String(c.restarts)),
    h('td', { class: 'error' }, c.lastError)
  ))
  fill(byId('containers'), rows.length === 0 ? h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'no containers configured')) : rows)
}

export function renderReputation (rep) {
  if (!rep.scheduler) {
    fill(byId('reputation'), h('tr', {}, h('td', { colspan: 9, class: 'empty' }, 'this node schedules nothing (no scheduler or gateway role)')))
    return
  }
  fill(byId('reputation'), rep.nodes.length === 0
    ? h('tr', {}, h('td', { colspan: 9, class: 'empty' }, 'no assignments yet'))
    : rep.nodes.map((n) => h('tr', { 'data-node': n.nodeId },
      h('td', { class: 'mono', title: n.nodeId }, shortId(n.nodeId)),
      h('td', { class: 'num' }, h('span', { class: `score ${n.score < 0.5 ? 'bad' : n.score < 0.8 ? 'warn' : 'ok'}` }, n.score.toFixed(2))),
      h('td', { class: 'num' }, String(n.successes)),
      h('td', { class: 'num' }, String(n.failures)),
      h('td', { class: 'num' }, String(n.timeouts)),
      h('td', { class: 'num' }, String(n.refusals)),
      h('td', { class: 'num' }, String(n.disputesLost)),
      h('td', { class: 'num' }, ms(n.ackLatencyMs)),
      h('td', {}, n.excludedUntilMs > Date.now() ? clock(n.excludedUntilMs) : '—')
    )))
}

const recent = []

export function loadRefusals (view) {
  recent.splice(0, recent.length, ...view.recent)
  renderRefusals(view.guardianByReason)
}

export function refusalEvent (r) {
  recent.unshift(r)
  if (recent.length > 100) recent.pop()
  renderRefusals()
}

let counts = {}

export function renderRefusals (byReason) {
  if (byReason !== undefined) counts = byReason
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  fill(byId('refusals-total'), `(${total} since the dashboard started)`)
  fill(byId('refusal-counts'), Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([k, v]) => h('span', { class: 'chip' }, `${k}: ${v}`)))
  fill(byId('refusals'), recent.length === 0
    ? h('tr', {}, h('td', { colspan: 4, class: 'empty' }, 'none'))
    : recent.slice(0, 20).map((r) => h('tr', {},
      h('td', { class: 'dim', title: ago(r.atMs) }, clock(r.atMs)),
      h('td', {}, r.reason),
      h('td', { class: 'mono' }, r.containerId || '—'),
      h('td', { class: 'code' }, r.code)
    )))
}
