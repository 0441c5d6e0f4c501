// The dashboard page: its first state from the JSON routes, everything after from one event stream
// (GET /api/events, server-sent events). It only reads: the page holds no form, button or input,
// and the server answers GET only. docs/DASHBOARD.md documents every route and event.
import { h, fill, byId } from './dom.js'
import { duration, shortId } from './format.js'
import { jobEvent, loadJobs, refreshDetail, setSelf } from './jobs.js'
import { containerEvent, loadContainers, loadRefusals, refusalEvent, renderCounters, renderRefusals, renderReputation } from './tables.js'
import { renderPeers } from './peers.js'
import { initCharts, updateCharts } from './charts.js'

let roles = []

async function get (path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } })
  const body = await res.json()
  if (!res.ok) throw new Error(body?.error?.message ?? `${path}: HTTP ${res.status}`)
  return body
}

function setLive (state, text) {
  const el = byId('live')
  el.dataset.state = state
  fill(el, text ?? state)
}

function renderIdentity (node) {
  roles = node.roles
  setSelf(node.nodeId)
  fill(byId('identity'),
    h('span', { class: 'name' }, node.name),
    h('span', { class: 'mono node-id', 'data-node-id': node.nodeId, title: node.nodeId }, node.nodeId),
    node.roles.map((r) => h('span', { class: `chip role role-${r}` }, r)),
    h('span', { class: 'dim' }, `v${node.version}`),
    h('span', { class: 'dim', id: 'uptime' }, `up ${duration(node.status.uptimeMs)}`)
  )
  const l = node.listeners
  fill(byId('listeners'), [
    l.public ? `gRPC ${l.public}` : null,
    l.control ? `control ${l.control}` : null,
    l.metrics ? `metrics ${l.metrics}` : null,
    l.rest ? `REST ${l.rest}` : null,
    node.mesh !== null ? `mesh ${node.mesh.admission}` : 'mesh off'
  ].filter(Boolean).join(' · '))
  document.title = `${node.name} · inframind ${shortId(node.nodeId)}`
}

function renderStatus (status) {
  renderCounters(status)
  loadContainers(status.containers)
  const up = document.getElementById('uptime')
  if (up !== null) fill(up, `up ${duration(status.uptimeMs)}`)
}

/** Everything the routes know now; called on every (re)connection of the stream. */
async function loadAll () {
  const [node, jobs, peers, reputation, refusals, series] = await Promise.all([
    get('/api/node'), get('/api/jobs'), get('/api/peers'), get('/api/reputation'), get('/api/refusals'), get('/api/series')
  ])
  renderIdentity(node)
  renderStatus(node.status)
  loadJobs(jobs.jobs)
  renderPeers(peers, roles)
  renderReputation(reputation)
  loadRefusals(refusals)
  initCharts(series)
}

function connect () {
  const events = new EventSource('/api/events')
  events.addEventListener('open', () => {
    setLive('live')
    loadAll().catch((err) => setLive('error', `error: ${err.message}`))
  })
  events.addEventListener('error', () => setLive('reconnecting'))
  events.addEventListener('job', (m) => jobEvent(JSON.parse(m.data)))
  events.addEventListener('container', (m) => containerEvent(JSON.parse(m.data)))
  events.addEventListener('refusal', (m) => refusalEvent(JSON.parse(m.data)))
  events.addEventListener('snapshot', (m) => {
    const s = JSON.parse(m.data)
    renderStatus(s.status)
    renderPeers(s.peers, roles)
    renderReputation(s.reputation)
    renderRefusals(s.refusals.guardianByReason)
    updateCharts(s.series)
  })
}

window.addEventListener('hashchange', () => { refreshDetail() })
connect()
refreshDetail()
