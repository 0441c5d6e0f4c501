export class NoWorkerError extends Error {
  readonly code = 'NO_WORKER'
  constructor (containers: string[]) {
    super(`no live worker on the mesh serves ${containers.map((c) => `"${c}"`).join(' → ')} (check \`infra peers\`)`)
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
