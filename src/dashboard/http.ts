import type { IncomingMessage, ServerResponse } from 'node:http'
import { DashboardRequestError } from './errors.ts'

/**
 * The page runs only its own scripts and styles and talks only to this server: no inline script or
 * style, no eval, no other origin, no frames, no forms, no plugins.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

/** On every answer, errors included. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  // Another site's page may not embed or read these answers, even as an <img> or <script>.
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin'
}

/** Names a browser on this machine uses for a loopback address. */
const LOOPBACK_NAMES: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '::1'])

/**
 * Refuses what the dashboard never answers, before any route runs:
 * - a method other than GET or HEAD: the page only reads (405);
 * - a Host that is not a loopback name: a DNS-rebinding page (evil.example resolving to 127.0.0.1)
 *   reaches this port with its own name in Host (403). The port is not checked, so an SSH tunnel
 *   to another local port still works;
 * - a cross-site request (Sec-Fetch-Site) other than following a link to the page itself (403).
 */
export function guard (req: IncomingMessage, path: string): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    throw new DashboardRequestError(405, 'METHOD_NOT_ALLOWED', `the dashboard is read-only: it answers GET and HEAD only, not ${String(req.method)}`, { allow: 'GET, HEAD' })
  }
  const host = hostName(req.headers.host ?? '')
  if (host === undefined || !LOOPBACK_NAMES.has(host)) {
    throw new DashboardRequestError(403, 'HOST_NOT_ALLOWED', `the dashboard answers only requests addressed to 127.0.0.1, localhost or [::1] (this one named ${JSON.stringify(req.headers.host ?? '')}); open http://127.0.0.1:<port>/`)
  }
  const site = req.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none' && !(req.headers['sec-fetch-mode'] === 'navigate' && path === '/')) {
    throw new DashboardRequestError(403, 'CROSS_SITE', 'another site may not read the dashboard; open it directly')
  }
}

/** The host part of a Host header, lowercased, without brackets or port; undefined when malformed. */
export function hostName (header: string): string | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/.exec(header.trim())
  if (m === null) return undefined
  return (m[1] ?? m[2]).toLowerCase()
}

export function sendJson (res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { ...SECURITY_HEADERS, ...headers, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/** `{ error: { code, message } }`: the code for programs, the message says what to fix. */
export function sendError (res: ServerResponse, err: DashboardRequestError): void {
  sendJson(res, err.status, { error: { code: err.code, message: err.message } }, err.headers)
}
