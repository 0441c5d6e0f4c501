import { schemaViolation } from '../runtime/schema.ts'
import { JOB_ID_PATTERN, MAX_DEADLINE_MS } from './constants.ts'
import {
  InputTooLargeError, InvalidDeadlineError, InvalidInputError, InvalidJobIdError, UnknownContainerError
} from './errors.ts'
import type { ContainerConfig } from '../config/types.ts'
import type { SubmitRequest } from './types.ts'

export interface ValidSubmit {
  container: ContainerConfig
  /** undefined when the client gave none (a fresh id is generated). */
  jobId: string | undefined
  deadlineMs: number
}

/** Checks a submission before anything is stored; throws the error that tells the client what to fix. */
export function validateSubmit (
  req: SubmitRequest,
  containers: ReadonlyMap<string, ContainerConfig>,
  defaultDeadlineMs: number
): ValidSubmit {
  // '' is how proto3 spells "not set", so it means "generate one", not an invalid id.
  const jobId = req.jobId === undefined || req.jobId === '' ? undefined : req.jobId
  if (jobId !== undefined && (typeof jobId !== 'string' || !JOB_ID_PATTERN.test(jobId))) {
    throw new InvalidJobIdError(String(jobId))
  }
  const container = containers.get(req.containerId)
  if (container === undefined) throw new UnknownContainerError(String(req.containerId), [...containers.keys()])
  if (!(req.input instanceof Uint8Array)) {
    throw new InvalidInputError(container.id, 'input must be bytes (Uint8Array)')
  }
  if (req.input.byteLength > container.maxInputBytes) {
    throw new InputTooLargeError(container.id, req.input.byteLength, container.maxInputBytes)
  }
  const reason = schemaViolation(container.inputSchema, req.input)
  if (reason !== undefined) throw new InvalidInputError(container.id, reason)
  return { container, jobId, deadlineMs: checkDeadline(req.deadlineMs, defaultDeadlineMs) }
}

function checkDeadline (deadlineMs: number | undefined, defaultDeadlineMs: number): number {
  if (deadlineMs === undefined || deadlineMs === 0) return defaultDeadlineMs
  if (typeof deadlineMs !== 'number' || !Number.isFinite(deadlineMs) || deadlineMs < 0 || deadlineMs > MAX_DEADLINE_MS) {
    throw new InvalidDeadlineError(Number(deadlineMs), MAX_DEADLINE_MS)
  }
  return deadlineMs
}
