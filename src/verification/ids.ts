import { createHash } from 'node:crypto'
import type { SignedEnvelope } from '../envelope/types.ts'

/**
 * The job id a validator runs a re-execution under: "v:" + the first 32 hex digits of sha256(the checked
 * receipt envelope's payload). Derived from the receipt, so a repeated request is the same job on the
 * validator (idempotent), and it never collides with a client's job id (those have no reason to look
 * like it, and a validator never validates a job it ran).
 */
export function validationJobId (checkedReceipt: SignedEnvelope): string {
  return `v:${createHash('sha256').update(checkedReceipt.payload).digest('hex').slice(0, 32)}`
}
