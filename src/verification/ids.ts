import { createHash } from 'node:crypto'

/**
 * The job id a validator runs a re-execution under: "v:" + the first 32 hex digits of sha256(the
 * job's job_hash). Derived from the job (its id, containers and input hash), so a validator asked
 * early, before the worker's receipt exists, and asked again with the receipt, runs it once
 * (idempotent); and it never collides with a client's job id (those have no reason to look like it,
 * and a validator never validates a job it ran).
 */
export function validationJobId (jobHash: Uint8Array): string {
  return `v:${createHash('sha256').update(jobHash).digest('hex').slice(0, 32)}`
}

/** The shape of a validation job id: what an early re-execution (no receipt yet) must be named. */
export const VALIDATION_JOB_ID = /^v:[0-9a-f]{32}$/
