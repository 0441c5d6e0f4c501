/**
 * Which validators check a job. Neither the client nor the worker picks them: the live validators that
 * serve every container of the job are ranked by sha256(job_hash ‖ utf8(validator_id)), ascending as
 * unsigned bytes, and the first v that are not the worker are asked. Anyone holding the job hash and the
 * candidate set can recompute the choice.
 */
import { createHash } from 'node:crypto'

export function validatorRank (jobHash: Uint8Array, validatorId: string): Buffer {
  return createHash('sha256').update(jobHash).update(validatorId, 'utf8').digest()
}

/** The candidates in rank order, the worker and duplicates left out. */
export function rankValidators (jobHash: Uint8Array, candidates: Iterable<string>, workerId: string): string[] {
  const ranked = [...new Set(candidates)].filter((id) => id !== workerId).map((id) => ({ id, rank: validatorRank(jobHash, id) }))
  ranked.sort((a, b) => Buffer.compare(a.rank, b.rank))
  return ranked.map((r) => r.id)
}

/** The first `v` of rankValidators (fewer when fewer candidates are live). */
export function chooseValidators (jobHash: Uint8Array, candidates: Iterable<string>, workerId: string, v: number): string[] {
  return rankValidators(jobHash, candidates, workerId).slice(0, v)
}

/** True when `ids` are in rank order for `jobHash` (what a certificate's chosen list must be). */
export function inRankOrder (jobHash: Uint8Array, ids: readonly string[]): boolean {
  for (let i = 1; i < ids.length; i++) {
    if (Buffer.compare(validatorRank(jobHash, ids[i - 1] as string), validatorRank(jobHash, ids[i] as string)) >= 0) return false
  }
  return true
}
