/**
 * The REST listener: fastify with a JSON schema on every body and query, Infernet's error shape on
 * every failure (fastify's own shapes never reach a client), and the routes in ./routes.
 */
import { fastify, type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify'
import type { IoSchema } from '../config/types.ts'
import { BodyTooLargeError, InvalidJsonError, InvalidRequestError, internalFailure, toFailure, type HttpFailure } from './errors.ts'
import { nodeRoutes } from './routes/node.ts'
import { jobRoutes } from './routes/jobs.ts'
import { streamRoutes } from './routes/stream.ts'
import { fallbackRoutes } from './routes/fallback.ts'
import type { RestComponents, RestContext, RestInit, RestServer } from './types.ts'

/**
 * A request's headers and body must arrive within this time (slow-loris guard); a streamed answer
 * lasts as long as its job, which this does not limit.
 */
export const REQUEST_TIMEOUT_MS = 60_000

export function restServer (init: RestInit): (components: RestComponents) => RestServer {
  return (components) => {
    const logger = components.logger.child({ component: 'rest' })
    const byId = new Map(components.containers.map((c) => [c.id, c]))
    const ctx: RestContext = {
      ...components,
      logger,
      maxBatch: init.maxBatch,
      schemaOf: (id): IoSchema => byId.get(id)?.outputSchema ?? 'bytes',
      streams: new Set()
    }
    let app: FastifyInstance | undefined
    let starting: Promise<void> | undefined
    let bound = ''

    const listen = async (): Promise<void> => {
      const server = build(init, ctx)
      let url: string
      try {
        url = await server.listen({ host: init.host, port: init.port })
      } catch (err) {
        // e.g. EADDRINUSE: nothing of this attempt stays open.
        await server.close().catch(() => {})
        throw err
      }
      app = server
      const port = (server.server.address() as { port: number } | null)?.port ?? init.port
      bound = `${init.host.includes(':') ? `[${init.host}]` : init.host}:${port}`
      logger.info({ address: bound, url }, 'REST API (Infernet-compatible) listening')
    }

    return {
      address: () => bound,
      async start () {
        if (app !== undefined) return
        // A second start while the first is binding waits for it rather than binding twice.
        starting ??= listen().finally(() => { starting = undefined })
        await starting
      },
      async stop () {
        await starting?.catch(() => {})
        const server = app
        if (server === undefined) return
        app = undefined
        bound = ''
        // Open streams would hold close() until their jobs end: cut them now (the jobs carry on).
        for (const controller of ctx.streams) controller.abort()
        await server.close()
      }
    }
  }
}

function build (init: RestInit, ctx: RestContext): FastifyInstance {
  const app = fastify({
    logger: false,
    bodyLimit: init.maxBodyBytes,
    requestTimeout: REQUEST_TIMEOUT_MS,
    // The origin of a job is the socket's peer, never a header a client can write.
    trustProxy: false,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, allowUnionTypes: true } }
  })
  // Every body is read as JSON whatever its Content-Type (Infernet's batch route does the same; curl
  // users forget the header), with JSON.parse's own words for where it breaks. An empty body is no
  // body: a route that needs one says so through its schema.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string
    if (text.trim() === '') {
      done(null, undefined)
      return
    }
    try {
      done(null, JSON.parse(text))
    } catch (err) {
      done(new InvalidJsonError((err as Error).message), undefined)
    }
  })
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const failure = failureOf(err, request, init)
    if (failure.status >= 500 && failure.body.params.code === 'INTERNAL') ctx.logger.error({ err, method: request.method, url: request.url }, 'request failed')
    void reply.code(failure.status).headers(failure.headers).send(failure.body)
  })
  nodeRoutes(app, ctx)
  jobRoutes(app, ctx)
  streamRoutes(app, ctx)
  fallbackRoutes(app)
  return app
}

/** Fastify's own failures in Infernet's shape, with what to fix; then the one table (errors.ts). */
function failureOf (err: FastifyError, request: FastifyRequest, init: RestInit): HttpFailure {
  let error: unknown = err
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') error = new BodyTooLargeError(init.maxBodyBytes)
  else if (err.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') error = new InvalidRequestError('the Content-Length header does not match the body sent')
  else if (err.validation !== undefined && !(err instanceof InvalidRequestError)) error = new InvalidRequestError(err.message)
  const body = request.body as { containers?: unknown } | undefined
  const containers = body !== null && typeof body === 'object' && Array.isArray(body.containers) ? body.containers as unknown[] : []
  const known = toFailure(error, containers)
  if (known !== undefined) return known
  // Anything else fastify says about the request itself (a malformed URL, a bad header) is the client's to fix.
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500
  if (status >= 400 && status < 500) return { status, headers: {}, body: { error: err.message, params: { code: err.code ?? 'BAD_REQUEST' } } }
  return internalFailure(err)
}
