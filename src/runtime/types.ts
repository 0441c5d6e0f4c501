import type { ContainerConfig } from '../config/types.ts'
import type { Startable } from '../types.ts'

/** Where a job came from; passed to service containers and checked by the Guardian. Never in telemetry. */
export interface JobOrigin {
  /** Client IP of a gRPC submission ('' when not known). */
  ip: string
  /** Mesh peer id that sent the job ('' for direct submissions). */
  peerId: string
  /** Delegate node id for delegated work ('' when not delegated). */
  delegate: string
}

export interface RunRequest {
  jobId: string
  container: ContainerConfig
  /** One-shot: written to stdin, then stdin is closed. Service: the `input` of the HTTP call. */
  input: Uint8Array
  origin?: JobOrigin
  /** The job asked for a proof; an Infernet-protocol service is told so (`requires_proof`). Default false. */
  requiresProof?: boolean
  /** Aborting kills and removes the container; run() then rejects with RunAbortedError. */
  signal?: AbortSignal
  /**
   * Sees the output as it is produced, in order: a one-shot container's stdout as it writes it, a
   * service's streamed (non-JSON) response body as it arrives; a JSON service answer is not shown here
   * (the job ends with it at once). Only bytes within max_output_bytes; the schema check is on the whole output (RunResult),
   * so a run that fails may have shown bytes first. Called synchronously: keep it cheap, never throw.
   */
  onOutput?: (chunk: Uint8Array) => void
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

/**
 * Service containers: pulling, starting, healthy, unhealthy, restarting, stopped, failed. One-shot: ready,
 * missing, and pulling while the image cache fetches its image (the node's prefetch, or a run's).
 */
export type ContainerState = 'pulling' | 'starting' | 'healthy' | 'unhealthy' | 'restarting' | 'stopped' | 'failed' | 'ready' | 'missing'

export interface ContainerStatus {
  id: string
  mode: ContainerConfig['mode']
  state: ContainerState
  restarts: number
  lastError: string
  /** Service containers: the 127.0.0.1 port the node calls (0 when not running). */
  hostPort: number
  /** Only while `pulling`, once the fetch reported: bytes of the image downloaded so far. */
  pull?: ImageProgress
}

/**
 * How far an image fetch is: bytes of the tar downloaded, or of the layers a registry pull downloaded.
 * `totalBytes` is 0 while the size is unknown (no Content-Length, layers not yet announced).
 */
export interface ImageProgress {
  doneBytes: number
  totalBytes: number
}

export interface ContainerEvent {
  containerId: string
  state: ContainerState
  detail: string
  atMs: number
}

/** Finds (or fetches) a container's image and returns its verified id (= the pinned digest). */
export interface ImageResolver {
  /**
   * `onProgress` hears a fetch's progress (at most every IMAGE_PROGRESS_INTERVAL_MS, and the current
   * value at once when joining a fetch already under way); never called when the image is local.
   */
  ensure(container: ContainerConfig, opts?: { signal?: AbortSignal, onProgress?: (progress: ImageProgress) => void }): Promise<string>
  /** The last progress of a fetch of `container`'s image under way, whoever asked for it; undefined when none. */
  progress?(container: ContainerConfig): ImageProgress | undefined
}

export interface RuntimeStats {
  /** Containers left by an earlier run of this node (its id in their inframind.node label) that the last start() removed. */
  reapedAtStart: number
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
  /** State of every configured container (service lifecycle, or image readiness for one-shot). */
  containerStatuses(): ContainerStatus[]
  /** Calls listener on every container state change; returns an unsubscribe function. */
  onContainerEvent(listener: (event: ContainerEvent) => void): () => void
  /** Counters of the runtime's own housekeeping. */
  stats(): RuntimeStats
}
