// The one way this page makes DOM: elements from a tag name, attributes from an allow-list, and
// children as nodes or text (document.createTextNode). Nothing here parses HTML, so a job id, a
// container name or an error message can only ever be text (the CSP forbids inline script too).

const ATTRS = new Set(['class', 'href', 'title', 'id', 'role', 'colspan', 'lang'])
const SVG_NS = 'http://www.w3.org/2000/svg'
const SVG_ATTRS = new Set(['class', 'viewBox', 'width', 'height', 'x', 'y', 'x1', 'y1', 'x2', 'y2', 'cx', 'cy', 'r', 'text-anchor', 'role'])

function setAttrs (el, attrs, allowed) {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue
    if (!(allowed.has(k) || k.startsWith('data-') || k.startsWith('aria-'))) throw new Error(`attribute ${k} is not allowed`)
    // Links stay inside the page (hash routes): no javascript:, no other origin.
    if (k === 'href' && !String(v).startsWith('#')) throw new Error('only #... links are allowed')
    el.setAttribute(k, String(v))
  }
}

function append (el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return el
}

/** An HTML element: h('td', { class: 'num' }, 'text', otherNode). */
export function h (tag, attrs, ...children) {
  const el = document.createElement(tag)
  setAttrs(el, attrs, ATTRS)
  return append(el, children)
}

/** An SVG element (the peers graph). */
export function s (tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag)
  setAttrs(el, attrs, SVG_ATTRS)
  return append(el, children)
}

/** Replaces everything inside `el`. */
export function fill (el, ...children) {
  el.replaceChildren()
  return append(el, children)
}

export function byId (id) {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`no #${id} in the page`)
  return el
}
