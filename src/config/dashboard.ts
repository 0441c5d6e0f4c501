import type { DashboardConfig } from './types.ts'
import * as C from './constants.ts'
import { address, section, type Ctx, type Path } from './fields.ts'

const DASHBOARD_KEYS = ['listen'] as const

/**
 * `dashboard: { listen: "127.0.0.1:9090" }`; `listen: ""` turns it off. Only loopback is accepted:
 * the page shows job ids (bearer keys at this gateway), peers and refusals, which are the operator's.
 */
export function parseDashboard (ctx: Ctx, raw: unknown): DashboardConfig {
  const path: Path = ['dashboard']
  const o = section(ctx, raw, path, DASHBOARD_KEYS)
  if (o.listen === '') return { enabled: false, host: C.DEFAULT_DASHBOARD_HOST, port: C.DEFAULT_DASHBOARD_PORT }
  const listen = address(ctx, o, 'listen', path, { host: C.DEFAULT_DASHBOARD_HOST, port: C.DEFAULT_DASHBOARD_PORT })
  if (!C.LOOPBACK_HOSTS.includes(listen.host)) {
    ctx.report('INVALID_VALUE', [...path, 'listen'], `a loopback address (${C.LOOPBACK_HOSTS.join(', ')}) or "" (off)`,
      `the dashboard shows job ids, peers and refusals, so it must be loopback only (127.0.0.1:9090, [::1]:9090 or localhost:9090; reach it remotely through an SSH tunnel) or "" to turn it off, got "${listen.host}"`)
  }
  return { enabled: true, ...listen }
}
