// The jobs list (live from the event stream) and one job's detail (read when its link is followed).
import { h, fill, byId } from './dom.js'
import { ago, bytes, clock, ms, shortHash, shortId, stateName, terminal } from './format.js'

/** Rows kept in the page: the newest; older ones stay readable through their link. */
const MAX_ROWS = 200

const jobs = new Map()
let self = ''
let pending = false

export function setSelf (nodeId) {
  self = nodeId
}

/** The first list (GET /api/jobs): a job already updated by the stream keeps its newer state. */
export function loadJobs (list) {
  for (const job of list) {
    const known = jobs.get(job.id)
    if (known === undefined || !terminal(known.state)) jobs.set(job.id, job)
  }
  schedule()
}

/** A `job` event: its line when it ended, else its new state on the line it has (or a new line). */
export function jobEvent (e) {
  if (e.job !== undefined) {
    jobs.set(e.job.id, e.job)
  } else {
    const known = jobs.get(e.jobId)
    // Events of one job can overtake each other between the list and the stream: an ended job stays ended.
    if (known !== undefined && terminal(known.state)) return
    jobs.set(e.jobId, {
      ...(known ?? { id: e.jobId, containers: [e.containerId], createdAtMs: e.atMs, latencyMs: 0, workerId: '', receipt: false, verification: null, errorCode: '', error: '' }),
      state: stateName(e.state),
      lane: e.lane,
      detail: e.detail
    })
  }
  schedule()
  if (detailId() === e.jobId) refreshDetail()
}

function schedule () {
  if (pending) return
  pending = true
  requestAnimationFrame(() => { pending = false; render() })
}

function sorted () {
  const list = [...jobs.values()].sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? -1 : 1))
  for (const old of list.slice(MAX_ROWS)) jobs.delete(old.id)
  return list.slice(0, MAX_ROWS)
}

function render () {
  const list = sorted()
  fill(byId('jobs-count'), `${list.length} shown`)
  fill(byId('jobs'), list.length === 0 ? h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'no jobs yet')) : list.map(row))
}

export function stateBadge (state) {
  return h('span', { class: `state state-${state}` }, state)
}

function worker (job) {
  if (job.workerId === '' || job.workerId === undefined) return h('span', { class: 'dim' }, job.lane === 'mesh' ? 'on the mesh' : '—')
  return job.workerId === self ? h('span', { title: job.workerId }, 'this node') : h('span', { class: 'mono', title: job.workerId }, shortId(job.workerId))
}

function certificate (job) {
  const v = job.verification
  if (v === null || v === undefined) return h('span', { class: 'dim' }, 'not asked')
  return h('span', { class: `verif verif-${v.state}`, title: `${v.method}, ${v.quorum} of ${v.validators}${v.reason !== '' ? `: ${v.reason}` : ''}` }, v.certificate ? 'certified' : v.state)
}

function row (job) {
  return h('tr', { 'data-job-id': job.id, 'data-state': job.state },
    h('td', { class: 'mono' }, h('a', { href: `#job=${encodeURIComponent(job.id)}`, title: 'show steps' }, job.id)),
    h('td', { class: 'mono' }, (job.containers ?? []).join(' → ')),
    h('td', {}, stateBadge(job.state), job.errorCode ? h('span', { class: 'code', title: job.error ?? '' }, ` ${job.errorCode}`) : null),
    h('td', {}, worker(job)),
    h('td', { class: 'num' }, ms(job.latencyMs)),
    h('td', {}, job.receipt ? h('span', { class: 'ok' }, 'signed') : h('span', { class: 'dim' }, terminal(job.state) ? 'none' : '—')),
    h('td', {}, certificate(job)),
    h('td', { class: 'dim', title: new Date(job.createdAtMs).toISOString() }, clock(job.createdAtMs))
  )
}

// ---- detail ----

export function detailId () {
  const m = /^#job=(.+)$/.exec(location.hash)
  if (m === null) return ''
  try { return decodeURIComponent(m[1]) } catch { return '' }
}

let loading = 0

/** Shows the job named by the location's hash (#job=ID), or hides the panel. */
export async function refreshDetail () {
  const panel = byId('job-detail')
  const id = detailId()
  if (id === '') {
    panel.hidden = true
    fill(panel)
    return
  }
  const ticket = ++loading
  let body
  try {
    const res = await fetch(`/api/jobs/${encodeURIComponent(id)}`, { headers: { accept: 'application/json' } })
    body = await res.json()
  } catch (err) {
    body = { error: { code: 'UNREACHABLE', message: String(err) } }
  }
  if (ticket !== loading) return
  panel.hidden = false
  fill(panel, body.job !== undefined ? detail(body.job) : [closeLink(), h('h2', {}, 'Job ', h('span', { class: 'mono' }, id)), h('p', { class: 'error' }, body.error?.message ?? 'not found')])
}

function closeLink () {
  return h('a', { href: '#', class: 'close', title: 'close' }, 'close ✕')
}

function facts (pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))
}

function detail (job) {
  const mono = (t, title) => h('span', { class: 'mono', title: title ?? t }, t)
  return [
    closeLink(),
    h('h2', {}, 'Job ', mono(job.id), ' ', stateBadge(job.state)),
    facts([
      ['containers', mono(job.containers.join(' → '))],
      ['ran on', job.workerId === '' ? '—' : job.workerId === self ? 'this node' : mono(job.workerId)],
      job.schedulerId !== '' && ['assigned by', mono(job.schedulerId)],
      ['created', `${clock(job.createdAtMs)} (${ago(job.createdAtMs)})`],
      ['latency', ms(job.latencyMs)],
      ['deadline', clock(job.deadlineAtMs)],
      ['input', [bytes(job.inputBytes), ' · sha256 ', mono(shortHash(job.inputSha256), job.inputSha256)]],
      ['proof required', job.requiresProof ? 'yes' : 'no'],
      job.errorCode !== '' && ['error', [h('span', { class: 'code' }, job.errorCode), ' ', job.error]]
    ]),
    h('h3', {}, `Steps (${job.steps.length} of ${job.containers.length})`),
    h('table', { class: 'steps' },
      h('thead', {}, h('tr', {}, ['#', 'container', 'status', 'exit', 'latency', 'output', 'output sha256', 'image', 'error'].map((t) => h('th', {}, t)))),
      h('tbody', {}, job.steps.length === 0
        ? h('tr', {}, h('td', { colspan: 9, class: 'empty' }, 'no step has run yet'))
        : job.steps.map((st, i) => h('tr', { 'data-container': st.containerId, 'data-status': st.status },
          h('td', { class: 'num' }, String(i + 1)),
          h('td', { class: 'mono' }, st.containerId),
          h('td', {}, stateBadge(st.status)),
          h('td', { class: 'num' }, st.exitCode < 0 ? '—' : String(st.exitCode)),
          h('td', { class: 'num' }, ms(st.latencyMs)),
          h('td', { class: 'num' }, bytes(st.outputBytes)),
          h('td', {}, mono(shortHash(st.outputSha256), st.outputSha256)),
          h('td', {}, mono(shortHash(st.imageDigest.replace(/^sha256:/, '')), st.imageDigest)),
          h('td', {}, st.errorCode !== '' ? [h('span', { class: 'code' }, st.errorCode), ' ', st.error] : '')
        )))
    ),
    h('div', { class: 'two' },
      h('div', {},
        h('h3', {}, 'History'),
        h('ol', { class: 'history' }, job.history.map((e) => h('li', {}, h('span', { class: 'dim' }, clock(e.atMs)), ' ', stateBadge(e.state), ' ', e.detail)))
      ),
      h('div', {},
        h('h3', {}, 'Receipt'),
        job.receiptDetail === null
          ? h('p', { class: 'dim' }, 'no receipt')
          : facts([
            ['signed by', mono(job.receiptDetail.signer)],
            ['status', job.receiptDetail.status],
            ['job hash', mono(shortHash(job.receiptDetail.jobHash), job.receiptDetail.jobHash)],
            ['input hash', mono(shortHash(job.receiptDetail.inputHash), job.receiptDetail.inputHash)],
            ['output hash', mono(shortHash(job.receiptDetail.outputHash), job.receiptDetail.outputHash)]
          ]),
        h('h3', {}, 'Certificate'),
        job.certificateDetail === null
          ? h('p', { class: 'dim' }, job.verification === null ? 'not asked for' : `${job.verification.state}${job.verification.reason !== '' ? `: ${job.verification.reason}` : ''}`)
          : facts([
            ['issued by', mono(job.certificateDetail.signer)],
            ['resolution', job.certificateDetail.resolution === '' ? 'worker output certified' : job.certificateDetail.resolution],
            ['attestations', `${job.certificateDetail.attestations} (chosen: ${job.certificateDetail.chosen.map(shortId).join(', ')})`],
            ['output hash', mono(shortHash(job.certificateDetail.outputHash), job.certificateDetail.outputHash)]
          ])
      )
    )
  ]
}
