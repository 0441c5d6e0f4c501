import type { ContainerConfig } from '../config/types.ts'
import type { Startable } from '../types.ts'

export interface RunRequest {
  jobId: string
  container: ContainerConfig
  /** Written to the container's stdin, then stdin is closed. */
  input: Uint8Array
  /** Aborting kills and removes the container; run() then rejects with RunAbortedError. */
  signal?: AbortSignal
}

export interface RunResult {
  /** Container stdout, already checked against container.outputSchema. */
  output: Uint8Array
  exitCode: number
  /** Image id (sha256:...) that ran; equals the pinned digest. */
  imageDigest: string
  /** Last few KiB of stderr, for diagnostics. */
  stderrTail: string
  startedAtMs: number
  finishedAtMs: number
}

export interface ImageStatus {
  image: string
  present: boolean
  /** Image id the engine reports for `image` ('' when absent). */
  digest: string
}

export interface Runtime extends Startable {
  /** Runs one job in a fresh sandboxed container, removed afterwards whatever happens. */
  run(req: RunRequest): Promise<RunResult>
  /** Resolves an image reference in the local engine. */
  imageStatus(image: string): Promise<ImageStatus>
  /** Number of containers this runtime has created and not yet removed. */
  activeContainers(): number
  /** Resolves once every finished run's container is removed (run() returns before the removal ends). */
  settled(): Promise<void>
}
