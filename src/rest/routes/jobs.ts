/**
 * POST /api/jobs, POST /api/jobs/batch and GET /api/jobs: Infernet's job intake and results, each a
 * thin adapter over the jobs service, with the HTTP client's address as the job's origin.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { JOB_ID_PATTERN } from '../../gateway/index.ts'
import type { JobRecord } from '../../store/types.ts'
import type { JobState } from '../../types.ts'
import { internalFailure, toFailure, type ErrorBody } from '../errors.ts'
import { clientIp, isClientJob, toJobResult, toSubmit, type JobRequestBody, type JobResult } from '../infernet.ts'
import { JOB_REQUEST, JOB_REQUEST_HINT, JOBS_QUERY, batchSchema } from '../schemas.ts'
import { validationError } from '../validation.ts'
import type { RestContext } from '../types.ts'

/**
 * Jobs looked at for one id listing: the store keeps store.max_results finished jobs (1,000 by
 * default) besides the queued and running ones, so this covers it unless an operator raised that.
 */
export const MAX_LISTED_JOBS = 10_000

interface JobsQuery { id?: string[] | string, intermediate?: 'true' | 'false', pending?: 'true' | 'false' }

export function jobRoutes (app: FastifyInstance, ctx: RestContext): void {
  const jobHint = (errors: Parameters<typeof validationError>[0], dataVar: Parameters<typeof validationError>[1]): Error => validationError(errors, dataVar, JOB_REQUEST_HINT)

  app.post<{ Body: JobRequestBody }>('/api/jobs', { schema: { body: JOB_REQUEST }, schemaErrorFormatter: jobHint }, async (request) => {
    const { job } = await ctx.jobs.submit(toSubmit(request.body, ipOf(request)))
    return { id: job.id }
  })

  app.post<{ Body: JobRequestBody[] }>('/api/jobs/batch', {
    schema: { body: batchSchema(ctx.maxBatch) },
    schemaErrorFormatter: (errors, dataVar) => validationError(errors, dataVar, `send a list of at most ${ctx.maxBatch} jobs, each {"containers": [...], "data": {...}}`)
  }, async (request) => {
    const ip = ipOf(request)
    // Submitted in request order (each takes its queue place before the next is looked at); answered in the same order.
    return await Promise.all(request.body.map(async (item): Promise<{ id: string } | ErrorBody & { params: { status: number } }> => {
      try {
        const { job } = await ctx.jobs.submit(toSubmit(item, ip))
        return { id: job.id }
      } catch (err) {
        const failure = toFailure(err, item.containers) ?? internalFailure(err)
        if (failure.status === 500) ctx.logger.error({ err }, 'batch job failed unexpectedly')
        return { error: failure.body.error, params: { ...failure.body.params, status: failure.status } }
      }
    }))
  })

  app.get<{ Querystring: JobsQuery }>('/api/jobs', {
    schema: { querystring: JOBS_QUERY },
    // One ?id= arrives as a string, several as a list: the schema sees a list either way.
    preValidation: async (request) => {
      const q = request.query
      if (typeof q.id === 'string') q.id = [q.id]
    },
    schemaErrorFormatter: (errors, dataVar) => validationError(errors, dataVar, 'send ?id=<job id>&id=...[&intermediate=true] or ?pending=true|false')
  }, async (request) => {
    const ip = ipOf(request)
    const ids = request.query.id as string[] | undefined
    if (ids === undefined || ids.length === 0) return await listIds(ctx, ip, request.query.pending)
    const intermediate = request.query.intermediate === 'true'
    const out: JobResult[] = []
    // As Infernet: in the order asked, and an id that is not this client's job is left out (never an error).
    for (const id of ids) {
      if (!JOB_ID_PATTERN.test(id)) continue
      const job = await ctx.jobs.get(id)
      if (job !== undefined && isClientJob(job, ip)) out.push(toJobResult(job, ctx.schemaOf, intermediate))
    }
    return out
  })
}

function ipOf (request: FastifyRequest): string {
  return clientIp(request.socket.remoteAddress)
}

/** This client's job ids, unfinished first (as Infernet lists them), newest first within each. */
async function listIds (ctx: RestContext, ip: string, pending: 'true' | 'false' | undefined): Promise<string[]> {
  const states: JobState[][] = pending === 'true'
    ? [['pending', 'running']]
    : pending === 'false' ? [['success', 'failed']] : [['pending', 'running'], ['success', 'failed']]
  // A job can change state between two reads of the store: each id is listed once.
  const ids = new Set<string>()
  for (const group of states) {
    const jobs: JobRecord[] = []
    // The store reads only records in the state asked for.
    for (const state of group) jobs.push(...await ctx.jobs.list({ state, limit: MAX_LISTED_JOBS }))
    jobs.sort((a, b) => b.createdAtMs - a.createdAtMs)
    for (const job of jobs) if (isClientJob(job, ip)) ids.add(job.id)
  }
  return [...ids]
}
