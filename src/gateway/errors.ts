import { quote } from '../quote.ts'
import { CONTAINER_ID_RULE, JOB_ID_RULE } from './ids.ts'

/** The jobs service was used before start() or after stop(). */
export class NotStartedError extends Error {
  readonly code = 'NOT_STARTED'
  constructor (what = 'jobs service') {
    super(`${what} is not started (the node is starting or stopping; retry shortly)`)
    this.name = 'NotStartedError'
  }
}

export class InputTooLargeError extends Error {
  readonly code = 'INPUT_TOO_LARGE'
  readonly size: number
  readonly limit: number
  constructor (containerId: string, size: number, limit: number) {
    super(`input is ${size} bytes; container "${containerId}" accepts at most ${limit} (containers[].max_input_bytes)`)
    this.name = 'InputTooLargeError'
    this.size = size
    this.limit = limit
  }
}

export class InvalidInputError extends Error {
  readonly code = 'INVALID_INPUT'
  readonly reason: string
  constructor (containerId: string, reason: string, options?: ErrorOptions) {
    super(`input rejected by container ${quote(containerId)}: ${reason}`, options)
    this.name = 'InvalidInputError'
    this.reason = reason
  }
}

export class InvalidJobIdError extends Error {
  readonly code = 'INVALID_JOB_ID'
  constructor (jobId: string) {
    super(`job id ${quote(jobId)} is invalid: ${JOB_ID_RULE} (or omit it to get a generated id)`)
    this.name = 'InvalidJobIdError'
  }
}

/** A container id no node could serve: it breaks the rule every configured id follows. */
export class InvalidContainerIdError extends Error {
  readonly code = 'INVALID_CONTAINER_ID'
  constructor (containerId: string) {
    super(`container id ${quote(containerId)} is invalid: ${CONTAINER_ID_RULE}`)
    this.name = 'InvalidContainerIdError'
  }
}

export class InvalidDeadlineError extends Error {
  readonly code = 'INVALID_DEADLINE'
  constructor (deadlineMs: number, maxMs: number) {
    super(`deadline ${deadlineMs} ms is invalid: give milliseconds between 1 and ${maxMs}, or 0 for the node's default`)
    this.name = 'InvalidDeadlineError'
  }
}

export class QueueFullError extends Error {
  readonly code = 'QUEUE_FULL'
  readonly pending: number
  readonly limit: number
  constructor (pending: number, limit: number) {
    super(`queue is full (${pending} pending); retry later or raise jobs.queue_size`)
    this.name = 'QueueFullError'
    this.pending = pending
    this.limit = limit
  }
}

/** The container list of a submission is malformed (conflicting fields, too long). */
export class InvalidChainError extends Error {
  readonly code = 'INVALID_CHAIN'
  constructor (message: string) {
    super(message)
    this.name = 'InvalidChainError'
  }
}

export type ResourceKind = 'cpus' | 'memory'

/** A container asks for more CPU or memory than this whole node has, so it could never run here. */
export class InsufficientResourcesError extends Error {
  readonly code = 'INSUFFICIENT_RESOURCES'
  readonly containerId: string
  readonly resource: ResourceKind
  readonly needed: number
  readonly available: number
  constructor (containerId: string, resource: ResourceKind, needed: number, available: number) {
    const what = resource === 'cpus' ? `${needed} cpus but this node has ${available} cores` : `${needed} bytes of memory but this node has ${available}`
    super(`container "${containerId}" needs ${what}; run it on a larger node or lower its resources.${resource} in config.yaml`)
    this.name = 'InsufficientResourcesError'
    this.containerId = containerId
    this.resource = resource
    this.needed = needed
    this.available = available
  }
}

/** The gateway's mesh lane is full: max_in_flight jobs await workers and queue_size more wait for a place. */
export class GatewayFullError extends Error {
  readonly code = 'GATEWAY_FULL'
  readonly waiting: number
  readonly limit: number
  constructor (waiting: number, limit: number) {
    super(`the gateway is at its limit of mesh jobs (${waiting} waiting for one of gateway.max_in_flight places); retry later or raise gateway.queue_size`)
    this.name = 'GatewayFullError'
    this.waiting = waiting
    this.limit = limit
  }
}

/** No live worker on the mesh serves every container of the job right now. */
export class NoLiveWorkerError extends Error {
  readonly code = 'NO_WORKER'
  constructor (missing: string[], served: ReadonlySet<string>) {
    super(`no live worker on the mesh serves ${missing.map((m) => `"${m}"`).join(', ')}; served now: ${[...served].sort().join(', ') || 'none'} (see \`infra peers\`; retry once workers have joined)`)
    this.name = 'NoLiveWorkerError'
  }
}

/** The node neither runs the job's containers itself nor is on a mesh that could. */
export class NoExecutorError extends Error {
  readonly code = 'NO_EXECUTOR'
  constructor (containers: string[]) {
    super(`this node does not run ${containers.map((c) => `"${c}"`).join(' → ')} (no worker role) and is not on a mesh; give it the worker role or enable mesh`)
    this.name = 'NoExecutorError'
  }
}

/**
 * A worker's answer does not match the job the gateway sent: its receipt is for another job, the
 * output bytes are not the ones it signed, or an image other than the pinned one ran.
 */
export class RemoteResultMismatchError extends Error {
  readonly code: 'REMOTE_OUTPUT_MISMATCH' | 'REMOTE_RECEIPT_MISMATCH' | 'REMOTE_IMAGE_MISMATCH'
  readonly workerId: string
  constructor (code: RemoteResultMismatchError['code'], workerId: string, detail: string) {
    super(`worker ${workerId}: ${detail}`)
    this.name = 'RemoteResultMismatchError'
    this.code = code
    this.workerId = workerId
  }
}

/** A job id that GetJob/WatchJob/wait does not know. */
export class JobNotFoundError extends Error {
  readonly code = 'JOB_NOT_FOUND'
  constructor (jobId: string) {
    super(`no job with id ${quote(jobId)} on this node (list jobs with ListJobs or \`infra jobs\`)`)
    this.name = 'JobNotFoundError'
  }
}

/** A wait on or watch of a job ended because its caller went away (the job itself carries on). */
export class WaitAbortedError extends Error {
  readonly code = 'ABORTED'
  constructor (jobId: string, options?: ErrorOptions) {
    super(`stopped waiting for job ${quote(jobId)} (the caller went away; the job carries on: fetch it with GetJob)`, options)
    this.name = 'WaitAbortedError'
  }
}

/**
 * A reader of a job's live output got bytes that are not the start of its final output: the job ran
 * again elsewhere (a worker lost mid-job, a disputed result) with another output. What was streamed
 * is void; the job's output is the one GetJob returns.
 */
export class OutputRestartedError extends Error {
  readonly code = 'OUTPUT_RESTARTED'
  constructor (jobId: string, streamed: number, agreed: number) {
    super(`the output of job ${quote(jobId)} was produced again by another run after ${streamed} bytes were streamed; only the first ${agreed} match the final output: fetch the whole output with GetJob`)
    this.name = 'OutputRestartedError'
  }
}
