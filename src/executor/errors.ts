/** The executor was asked to run a job before start() or after stop(). */
export class ExecutorStoppedError extends Error {
  readonly code = 'NOT_STARTED'
  constructor () {
    super('the executor is not running (the node is starting or stopping; retry shortly)')
    this.name = 'ExecutorStoppedError'
  }
}
