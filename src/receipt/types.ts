export interface ReceiptStep {
  containerId: string
  /** sha256:<hex> image id of the image that ran ('' when the job failed before an image was resolved). */
  imageDigest: string
  outputHash: Uint8Array
  exitCode: number
}

export interface Receipt {
  jobId: string
  jobHash: Uint8Array
  inputHash: Uint8Array
  outputHash: Uint8Array
  steps: ReceiptStep[]
  status: 'success' | 'failed'
  exitCode: number
  latencyMs: number
  startedAtMs: number
  finishedAtMs: number
  workerId: string
  schedulerId: string
  error: string
}
