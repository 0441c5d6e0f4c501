/** A subscription's interval job ended without a result that may be delivered. */
export class SubscriptionJobFailedError extends Error {
  readonly code = 'SUBSCRIPTION_JOB_FAILED'
  readonly jobCode: string
  constructor (jobId: string, jobCode: string, reason: string) {
    super(`subscription job ${jobId} gave no deliverable result (${jobCode}): ${reason}`)
    this.name = 'SubscriptionJobFailedError'
    this.jobCode = jobCode
  }
}
