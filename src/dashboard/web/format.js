// Text for numbers, times and ids. Pure functions: no DOM.

const WIRE_STATES = { JOB_STATE_PENDING: 'pending', JOB_STATE_RUNNING: 'running', JOB_STATE_SUCCESS: 'success', JOB_STATE_FAILED: 'failed' }

/** The job state of an event (the StreamEvents enum name) as the job lists name it. */
export function stateName (wire) {
  return WIRE_STATES[wire] ?? 'unknown'
}

export function terminal (state) {
  return state === 'success' || state === 'failed'
}

/** The first and last characters of a node id (they are 52 long). */
export function shortId (id) {
  if (typeof id !== 'string' || id === '') return '—'
  return id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id
}

export function shortHash (hex) {
  if (typeof hex !== 'string' || hex === '') return '—'
  return hex.length > 16 ? `${hex.slice(0, 12)}…` : hex
}

export function ms (v) {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) return '—'
  if (v < 1000) return `${Math.round(v)} ms`
  if (v < 60_000) return `${(v / 1000).toFixed(v < 10_000 ? 2 : 1)} s`
  return `${Math.floor(v / 60_000)} min ${Math.round((v % 60_000) / 1000)} s`
}

export function duration (v) {
  if (typeof v !== 'number' || v < 0) return '—'
  const s = Math.floor(v / 1000)
  const d = Math.floor(s / 86400)
  const hh = Math.floor((s % 86400) / 3600)
  const mm = Math.floor((s % 3600) / 60)
  if (d > 0) return `${d} d ${hh} h`
  if (hh > 0) return `${hh} h ${mm} min`
  if (mm > 0) return `${mm} min ${s % 60} s`
  return `${s} s`
}

export function bytes (v) {
  if (typeof v !== 'number' || v < 0) return '—'
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let x = v
  while (x >= 1024 && i < units.length - 1) { x /= 1024; i++ }
  return `${i === 0 ? x : x.toFixed(1)} ${units[i]}`
}

export function clock (atMs) {
  if (typeof atMs !== 'number' || atMs <= 0) return '—'
  return new Date(atMs).toLocaleTimeString([], { hour12: false })
}

export function ago (atMs, now = Date.now()) {
  if (typeof atMs !== 'number' || atMs <= 0) return '—'
  return `${duration(Math.max(0, now - atMs))} ago`
}

export function pct (v) {
  return typeof v === 'number' && Number.isFinite(v) ? `${v.toFixed(v < 10 ? 1 : 0)} %` : '—'
}
