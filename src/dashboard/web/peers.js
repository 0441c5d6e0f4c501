// The mesh as this node sees it: a star graph (this node in the middle, every known peer around it,
// a line to those it is connected to) and a table. Peers do not tell us their own links, so a star
// is the honest picture.
import { h, s, fill, byId } from './dom.js'
import { ago, ms, shortId } from './format.js'

const SIZE = 360
const CENTER = SIZE / 2
const RADIUS = 135

function roleClass (roles) {
  for (const r of ['scheduler', 'gateway', 'validator', 'archive', 'worker']) if (roles.includes(r)) return r
  return 'other'
}

function peerState (p) {
  if (!p.alive && !p.connected) return 'gone'
  if (!p.connected) return 'seen'
  return p.alive ? 'alive' : 'connected'
}

export function renderPeers (view, selfRoles) {
  const peers = [...view.peers].sort((a, b) => a.nodeId < b.nodeId ? -1 : 1)
  fill(byId('peers-count'), view.nodeId === '' || view.addresses.length === 0 && peers.length === 0
    ? '(mesh off)'
    : `(${peers.filter((p) => p.alive).length} alive of ${peers.length} known · admission ${view.admission || '—'})`)
  fill(byId('peer-graph'), graph(peers, selfRoles), h('div', { class: 'legend' },
    ['scheduler', 'gateway', 'validator', 'archive', 'worker'].map((r) => h('span', { class: `key role-${r}` }, r))))
  fill(byId('peers'), peers.length === 0
    ? h('tr', {}, h('td', { colspan: 9, class: 'empty' }, 'no peers'))
    : peers.map((p) => h('tr', { 'data-node': p.nodeId, 'data-state': peerState(p) },
      h('td', { class: 'mono', title: p.nodeId }, shortId(p.nodeId)),
      h('td', {}, (p.rosterRoles.length > 0 ? p.rosterRoles : p.roles).join(', ') || '—', p.rosterRoles.length === 0 ? h('span', { class: 'dim' }, ' (not in roster)') : null),
      h('td', { class: 'mono small' }, p.containers.join(', ') || '—'),
      h('td', {}, h('span', { class: `pstate pstate-${peerState(p)}` }, peerState(p))),
      h('td', { class: 'num' }, p.latencyMs < 0 ? '—' : ms(Math.max(p.latencyMs, 0.5))),
      h('td', { class: 'num' }, String(p.freeSlots)),
      h('td', { class: 'num' }, p.load.toFixed(2)),
      h('td', { class: 'num' }, p.score < 0 ? '—' : p.score.toFixed(2)),
      h('td', { class: 'dim' }, ago(p.lastSeenMs))
    )))
}

function graph (peers, selfRoles) {
  const n = peers.length
  const nodes = peers.map((p, i) => {
    const a = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2
    return { p, x: CENTER + RADIUS * Math.cos(a), y: CENTER + RADIUS * Math.sin(a) }
  })
  return s('svg', { viewBox: `0 0 ${SIZE} ${SIZE}`, width: SIZE, height: SIZE, role: 'img', 'aria-label': `this node and ${n} peers` },
    nodes.map(({ p, x, y }) => s('line', { x1: CENTER, y1: CENTER, x2: x.toFixed(1), y2: y.toFixed(1), class: `edge edge-${peerState(p)}` })),
    s('circle', { cx: CENTER, cy: CENTER, r: 16, class: `node node-self role-${roleClass(selfRoles)}` }),
    s('text', { x: CENTER, y: CENTER + 32, 'text-anchor': 'middle', class: 'label' }, 'this node'),
    nodes.map(({ p, x, y }) => s('g', { class: `peer peer-${peerState(p)}`, 'data-node': p.nodeId },
      s('title', {}, `${p.nodeId}\n${(p.rosterRoles.length > 0 ? p.rosterRoles : p.roles).join(', ')}\n${peerState(p)}`),
      s('circle', { cx: x.toFixed(1), cy: y.toFixed(1), r: 11, class: `node role-${roleClass(p.rosterRoles.length > 0 ? p.rosterRoles : p.roles)}` }),
      s('text', { x: x.toFixed(1), y: (y + (y > CENTER ? 24 : -16)).toFixed(1), 'text-anchor': 'middle', class: 'label' }, `…${p.nodeId.slice(-6)}`)
    ))
  )
}
