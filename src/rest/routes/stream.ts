/**
 * POST /api/jobs/stream: Infernet's streaming job. The job is admitted like any other (a refusal is
 * a JSON error with its status); once accepted the answer is 200, the job id and "\n", then the
 * job's output bytes as the node has them, ending when the job ends.
 */
import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { WaitAbortedError } from '../../gateway/index.ts'
import { clientIp, toSubmit, type JobRequestBody } from '../infernet.ts'
import { JOB_REQUEST, JOB_REQUEST_HINT } from '../schemas.ts'
import { validationError } from '../validation.ts'
import type { RestContext } from '../types.ts'

/** Response header carrying the job id (ours), so a client need not parse the first line. */
export const JOB_ID_HEADER = 'x-inframind-job-id'

export function streamRoutes (app: FastifyInstance, ctx: RestContext): void {
  app.post<{ Body: JobRequestBody }>('/api/jobs/stream', {
    schema: { body: JOB_REQUEST },
    schemaErrorFormatter: (errors, dataVar) => validationError(errors, dataVar, JOB_REQUEST_HINT)
  }, async (request, reply) => {
    const { job } = await ctx.jobs.submit(toSubmit(request.body, clientIp(request.socket.remoteAddress)))
    // From here the response is written by hand: headers now, the body as the output comes.
    reply.hijack()
    const controller = new AbortController()
    ctx.streams.add(controller)
    const res = reply.raw
    // The client went away: stop reading the job's output. The job carries on.
    res.on('close', () => { if (!res.writableFinished) controller.abort() })
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store', [JOB_ID_HEADER]: job.id })
    // A body cut short (the connection closed without HTTP's last chunk) tells the client that what it
    // got is not the output; a body that ends normally is the whole output, or all a failed job made.
    let cut = false
    pump(ctx, res, job.id, controller.signal)
      .catch((err: unknown) => {
        // Ended before the job did: the client left, or the node is stopping (the job resumes at the next start).
        cut = true
        if (err instanceof WaitAbortedError || controller.signal.aborted) return
        // Another run of the job (a mesh worker lost mid-job) produced its output again: the bytes streamed so far are void.
        if ((err as { code?: unknown }).code === 'OUTPUT_RESTARTED') ctx.logger.debug({ jobId: job.id }, 'output stream cut: the output was produced again')
        else ctx.logger.warn({ err, jobId: job.id }, 'output stream failed')
      })
      .finally(() => {
        ctx.streams.delete(controller)
        if (cut) res.destroy()
        else if (!res.writableEnded) res.end()
      })
    return reply
  })
}

async function pump (ctx: RestContext, res: ServerResponse, jobId: string, signal: AbortSignal): Promise<void> {
  // Infernet clients take the first chunk they read as the id: it leaves on its own before any output.
  await new Promise<void>((resolve, reject) => res.write(`${jobId}\n`, (err) => { if (err != null) reject(err); else resolve() }))
  for await (const chunk of ctx.jobs.outputStream(jobId, { signal })) {
    // The reader sets the pace: wait for the socket to take what was written before reading on.
    if (!res.write(chunk.data)) await once(res, 'drain', { signal })
  }
}
