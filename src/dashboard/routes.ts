import type { ApiComponents } from '../api/types.ts'
import type { JobState } from '../types.ts'
import { status, containersWithState, reputationOf } from '../api/control-service.ts'
import { peersOf } from '../api/mesh-service.ts'
import { JOB_ID_PATTERN } from '../gateway/index.ts'
import { DEFAULT_JOB_LIMIT, MAX_JOB_LIMIT, BUCKET_MS, BUCKETS_KEPT } from './constants.ts'
import { DashboardRequestError } from './errors.ts'
import { jobDetailView, jobView } from './views.ts'
import type { Refusals, Series } from './history.ts'

/** What the JSON routes read: the control plane's components (and builders), and the dashboard's own history. */
export interface RouteContext {
  c: ApiComponents
  series: Series
  refusals: Refusals
  /** Where the node's listeners are (public, control, metrics, dashboard). */
  listeners: () => Record<string, string>
}

const STATES: readonly JobState[] = ['pending', 'running', 'success', 'failed']

/** The JSON answer of a GET /api/... path (docs/DASHBOARD.md); DashboardRequestError for a 4xx. */
export async function apiAnswer (ctx: RouteContext, path: string, query: URLSearchParams): Promise<object> {
  const { c } = ctx
  switch (path) {
    case '/api/node': return await node(ctx)
    case '/api/jobs': return await jobs(ctx, query)
    case '/api/containers': return { containers: await containersWithState(c) }
    case '/api/peers': return peersOf(c)
    case '/api/reputation': return reputation(c)
    case '/api/refusals': return ctx.refusals.view()
    case '/api/series': return { bucketMs: BUCKET_MS, windowMs: BUCKET_MS * BUCKETS_KEPT, points: ctx.series.points() }
  }
  if (path.startsWith('/api/jobs/')) return await job(ctx, path.slice('/api/jobs/'.length))
  throw new DashboardRequestError(404, 'NOT_FOUND', `no such endpoint: ${path} (docs/DASHBOARD.md lists them)`)
}

/** What a page gets every few seconds: the same counters, containers, peers and reputation as the routes. */
export async function snapshot (ctx: RouteContext): Promise<object> {
  const { c } = ctx
  const { guardianByReason, allByReason } = ctx.refusals.view()
  return {
    atMs: Date.now(),
    status: await status(c),
    peers: peersOf(c),
    reputation: reputation(c),
    refusals: { guardianByReason, allByReason },
    series: ctx.series.latest()
  }
}

async function node (ctx: RouteContext): Promise<object> {
  const { c } = ctx
  return {
    nodeId: c.identity.nodeId,
    name: c.config.node.name,
    version: c.version,
    roles: c.config.node.roles,
    startedAtMs: c.startedAtMs,
    mesh: c.config.mesh.enabled ? { admission: c.config.mesh.admission.mode, addresses: c.mesh?.addresses() ?? [] } : null,
    listeners: ctx.listeners(),
    hardware: c.hardware,
    status: await status(c)
  }
}

function reputation (c: ApiComponents): object {
  return c.scheduler === undefined ? { scheduler: false, nodes: [] } : { scheduler: true, ...reputationOf(c.scheduler) }
}

async function jobs (ctx: RouteContext, query: URLSearchParams): Promise<object> {
  const limitText = query.get('limit')
  const limit = limitText === null ? DEFAULT_JOB_LIMIT : Number(limitText)
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_JOB_LIMIT) {
    throw new DashboardRequestError(400, 'INVALID_LIMIT', `limit must be an integer from 1 to ${MAX_JOB_LIMIT}, got ${JSON.stringify(limitText)}`)
  }
  const stateText = query.get('state')
  if (stateText !== null && !(STATES as readonly string[]).includes(stateText)) {
    throw new DashboardRequestError(400, 'INVALID_STATE', `state must be one of ${STATES.join(', ')}, got ${JSON.stringify(stateText)}`)
  }
  const list = await ctx.c.jobs.list({ limit, ...(stateText !== null ? { state: stateText as JobState } : {}) })
  return { jobs: list.map((j) => jobView(j, ctx.c.identity.nodeId)) }
}

async function job (ctx: RouteContext, encoded: string): Promise<object> {
  let id: string
  try {
    id = decodeURIComponent(encoded)
  } catch {
    throw new DashboardRequestError(400, 'INVALID_JOB_ID', 'the job id in the path is not valid percent-encoding')
  }
  if (!JOB_ID_PATTERN.test(id)) {
    throw new DashboardRequestError(400, 'INVALID_JOB_ID', 'a job id is 1 to 128 of A-Z a-z 0-9 . _ : -')
  }
  const record = await ctx.c.jobs.get(id)
  if (record === undefined) throw new DashboardRequestError(404, 'JOB_NOT_FOUND', `no job ${JSON.stringify(id)} on this node (finished jobs past store.max_results are evicted)`)
  return { job: jobDetailView(record, ctx.c.identity.nodeId) }
}
