/** Every other method on a known path is 405 with an Allow header (as Infernet's server answers), any other path 404. */
import type { FastifyInstance, HTTPMethods } from 'fastify'
import { MethodNotAllowedError, RouteNotFoundError } from '../errors.ts'

/** The paths served and their methods (HEAD comes with GET). */
const PATHS: ReadonlyArray<[string, readonly HTTPMethods[]]> = [
  ['/health', ['GET']],
  ['/info', ['GET']],
  ['/resources', ['GET']],
  ['/api/jobs', ['GET', 'POST']],
  ['/api/jobs/batch', ['POST']],
  ['/api/jobs/stream', ['POST']],
  // Infernet's own endpoint for its services to record job states by hand; here states come only from the node's runs.
  ['/api/status', []]
]

const METHODS: readonly HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

export function fallbackRoutes (app: FastifyInstance): void {
  for (const [path, allowed] of PATHS) {
    const withHead = allowed.includes('GET') ? [...allowed, 'HEAD' as const] : allowed
    const others = METHODS.filter((m) => !withHead.includes(m))
    const why = path === '/api/status' ? 'job states are recorded by this node\'s own runs only' : ''
    app.route({
      method: [...others],
      url: path,
      handler: async (request) => { throw new MethodNotAllowedError(request.method, path, withHead, why) }
    })
  }
  app.setNotFoundHandler(async (request) => { throw new RouteNotFoundError(request.method, request.url) })
}
