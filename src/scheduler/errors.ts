export class NoWorkerError extends Error {
  readonly code = 'NO_WORKER'
  constructor (containers: string[], passedOver: string[] = []) {
    const why = passedOver.length > 0 ? `; passed over: ${passedOver.slice(0, 8).join(', ')}` : ''
    super(`no live worker on the mesh serves ${containers.map((c) => `"${c}"`).join(' → ')}${why} (check \`infra peers\`)`)
    this.name = 'NoWorkerError'
  }
}

export class AssignmentRejectedError extends Error {
  readonly code = 'ASSIGNMENT_REJECTED'
  readonly refusals: string[]
  constructor (jobId: string, refusals: string[]) {
    super(`no worker took job ${jobId}: ${refusals.join('; ')}`)
    this.name = 'AssignmentRejectedError'
    this.refusals = refusals
  }
}

export class RemoteJobTimeoutError extends Error {
  readonly code = 'DEADLINE_EXCEEDED'
  constructor (jobId: string, workerId: string) {
    super(`job ${jobId} did not finish before its deadline${workerId !== '' ? ` (worker ${workerId})` : ''}`)
    this.name = 'RemoteJobTimeoutError'
  }
}

/** A worker's ack that does not answer the assignment sent: another signer, worker or job. */
export class AckMismatchError extends Error {
  readonly code = 'ACK_MISMATCH'
  constructor (signer: string, ackJobId: string, jobId: string, workerId: string) {
    super(`ack signed by ${signer} for job ${ackJobId} does not answer job ${jobId} assigned to ${workerId}`)
    this.name = 'AckMismatchError'
  }
}

/** The worker did not acknowledge the assignment within the ack timeout. */
export class AckTimeoutError extends Error {
  readonly code = 'ACK_TIMEOUT'
  constructor (workerId: string, timeoutMs: number) {
    super(`${workerId} did not acknowledge within ${timeoutMs} ms`)
    this.name = 'AckTimeoutError'
  }
}

/** A worker's result whose sealed output does not open with this scheduler's key (or for this job). */
export class UnreadableResultError extends Error {
  readonly code = 'UNREADABLE_RESULT'
  constructor (jobId: string, workerId: string, cause: unknown) {
    super(`the result of job ${jobId} from ${workerId} cannot be read: ${(cause as Error)?.message ?? String(cause)}`, { cause })
    this.name = 'UnreadableResultError'
  }
}
