/**
 * The Infernet-compatible REST API (docs/REST.md): Ritual Infernet's paths, bodies, status codes and
 * error shapes over this node's jobs service, so Infernet clients work unchanged.
 */
export { restServer, REQUEST_TIMEOUT_MS } from './server.ts'
export { JOB_ID_HEADER } from './routes/stream.ts'
export { MAX_LISTED_JOBS } from './routes/jobs.ts'
export { MAX_IDS_PER_QUERY } from './schemas.ts'
export * from './errors.ts'
export type { ContainerResult, JobResult, InfernetStatus } from './infernet.ts'
export type { RestComponents, RestInit, RestServer } from './types.ts'
