/** The orchestrator was used before start() or after stop(). */
export class NotStartedError extends Error {
  readonly code = 'NOT_STARTED'
  constructor (what = 'orchestrator') {
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
    super(`input rejected by container "${containerId}": ${reason}`, options)
    this.name = 'InvalidInputError'
    this.reason = reason
  }
}

export class InvalidJobIdError extends Error {
  readonly code = 'INVALID_JOB_ID'
  constructor (jobId: string) {
    const shown = jobId.length > 40 ? `${jobId.slice(0, 40)}…` : jobId
    super(`job id "${shown}" is invalid: use 1-128 characters from A-Z a-z 0-9 . _ : - (or omit it to get a generated id)`)
    this.name = 'InvalidJobIdError'
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
