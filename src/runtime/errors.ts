/**
 * One error class per runtime failure, told apart by `name` and `code` (never by message text).
 * Codes follow the project's convention (no prefix); the API maps them to gRPC statuses in one table.
 */

export interface RuntimeErrorDetails {
  /** Image id (sha256:...) involved, when known: failure receipts include it. */
  imageDigest?: string
  /** Exit code of the container process, when it exited. */
  exitCode?: number
  /** Last few KiB of the container's stderr, when it ran. */
  stderrTail?: string
  cause?: unknown
}

/** Base of every runtime failure, so callers can read the receipt fields uniformly. */
export class RuntimeError extends Error {
  readonly code: string
  readonly imageDigest?: string
  readonly exitCode?: number
  readonly stderrTail?: string

  constructor (name: string, code: string, message: string, details: RuntimeErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = name
    this.code = code
    if (details.imageDigest !== undefined) this.imageDigest = details.imageDigest
    if (details.exitCode !== undefined) this.exitCode = details.exitCode
    if (details.stderrTail !== undefined) this.stderrTail = details.stderrTail
  }
}

export class EngineUnavailableError extends RuntimeError {
  static readonly code = 'ENGINE_UNAVAILABLE'
  constructor (where: string, details?: RuntimeErrorDetails) {
    super('EngineUnavailableError', EngineUnavailableError.code,
      `no Docker engine answers at ${where}: start one with 'bash scripts/docker-engine.sh' (or 'sudo dockerd &'), ` +
      'or point runtime.socket / DOCKER_HOST at a running engine', details)
  }
}

/** An engine call failed or did not answer in time (not a failure of the job itself). */
export class EngineRequestError extends RuntimeError {
  static readonly code = 'ENGINE_REQUEST_FAILED'
  constructor (what: string, details?: RuntimeErrorDetails) {
    const reason = details?.cause instanceof Error ? `: ${details.cause.message}` : ''
    super('EngineRequestError', EngineRequestError.code, `Docker engine request failed (${what})${reason}`, details)
  }
}

export class RuntimeNotStartedError extends RuntimeError {
  static readonly code = 'NOT_STARTED'
  constructor () {
    super('RuntimeNotStartedError', RuntimeNotStartedError.code, 'the container runtime is not started: call start() first')
  }
}

export class UnsafeUserError extends RuntimeError {
  static readonly code = 'UNSAFE_USER'
  constructor (containerId: string, user: string) {
    super('UnsafeUserError', UnsafeUserError.code,
      `container ${containerId}: user ${JSON.stringify(user)} is refused; set a numeric non-root "uid" or "uid:gid" ` +
      '(e.g. "65534:65534"), since names and uid/gid 0 may mean root inside the image')
  }
}

export class InputTooLargeError extends RuntimeError {
  static readonly code = 'INPUT_TOO_LARGE'
  constructor (containerId: string, bytes: number, max: number) {
    super('InputTooLargeError', InputTooLargeError.code,
      `container ${containerId}: input is ${bytes} bytes, above its max_input_bytes of ${max}`)
  }
}

export class GpuUnavailableError extends RuntimeError {
  static readonly code = 'GPU_UNAVAILABLE'
  constructor (containerId: string) {
    super('GpuUnavailableError', GpuUnavailableError.code,
      `container ${containerId} needs an NVIDIA GPU but this node has none (nvidia-smi found no GPU); ` +
      'run it on a GPU node or set resources.gpu to false')
  }
}

/**
 * A container asks for an OCI runtime (runsc) the engine does not have. Never answered by running it
 * under the default runtime instead: whoever asked for gVisor did not trust the image with less.
 */
export class OciRuntimeUnavailableError extends RuntimeError {
  static readonly code = 'OCI_RUNTIME_UNAVAILABLE'
  readonly runtime: string
  constructor (containerId: string, runtime: string, available: readonly string[]) {
    super('OciRuntimeUnavailableError', OciRuntimeUnavailableError.code,
      `container ${containerId} needs runtime ${runtime} but the engine has only ${available.join(', ') || 'no named runtime'}, ` +
      `so it is not run (never under another runtime). Install it ('sudo apt-get install runsc') and register it with the engine: ` +
      `'sudo runsc install' then reload dockerd ('sudo systemctl reload docker' or 'kill -HUP' its pid), ` +
      `or start dockerd with '--add-runtime runsc=/usr/bin/runsc' (docs/ARCHITECTURE.md, "The sandbox")`)
    this.runtime = runtime
  }
}

export class ImageNotFoundError extends RuntimeError {
  static readonly code = 'IMAGE_NOT_FOUND'
  constructor (image: string, details?: RuntimeErrorDetails) {
    super('ImageNotFoundError', ImageNotFoundError.code,
      `image ${image} is not in the local engine: build the sample images with 'node scripts/build-images.ts' ` +
      `or load it with 'docker load' (no registry is pulled from)`, details)
  }
}

export class ImageDigestMismatchError extends RuntimeError {
  static readonly code = 'IMAGE_DIGEST_MISMATCH'
  readonly expected: string
  readonly actual: string
  constructor (image: string, expected: string, actual: string) {
    super('ImageDigestMismatchError', ImageDigestMismatchError.code,
      `image ${image} is ${actual} but the config pins ${expected}; refusing to run it. ` +
      'Rebuild/load the pinned image, or update the digest pin if the new image is trusted', { imageDigest: actual })
    this.expected = expected
    this.actual = actual
  }
}

export class ContainerTimeoutError extends RuntimeError {
  static readonly code = 'CONTAINER_TIMEOUT'
  constructor (containerId: string, timeoutMs: number, details?: RuntimeErrorDetails) {
    super('ContainerTimeoutError', ContainerTimeoutError.code,
      `container ${containerId} ran longer than its timeout of ${timeoutMs} ms and was killed`, details)
  }
}

export class RunAbortedError extends RuntimeError {
  static readonly code = 'ABORTED'
  constructor (reason: string, details?: RuntimeErrorDetails) {
    super('RunAbortedError', RunAbortedError.code, `container run aborted: ${reason}`, details)
  }
}

export class OutputTooLargeError extends RuntimeError {
  static readonly code = 'OUTPUT_TOO_LARGE'
  constructor (containerId: string, maxBytes: number, details?: RuntimeErrorDetails) {
    super('OutputTooLargeError', OutputTooLargeError.code,
      `container ${containerId} wrote more than its max_output_bytes of ${maxBytes} to stdout and was killed`, details)
  }
}

export class StderrTooLargeError extends RuntimeError {
  static readonly code = 'STDERR_TOO_LARGE'
  constructor (containerId: string, maxBytes: number, details?: RuntimeErrorDetails) {
    super('StderrTooLargeError', StderrTooLargeError.code,
      `container ${containerId} wrote more than ${maxBytes} bytes to stderr and was killed (log less, or write diagnostics to /tmp)`, details)
  }
}

export class ContainerExitError extends RuntimeError {
  static readonly code = 'CONTAINER_EXIT'
  constructor (containerId: string, exitCode: number, details?: RuntimeErrorDetails) {
    super('ContainerExitError', ContainerExitError.code,
      `container ${containerId} exited with code ${exitCode}`, { ...details, exitCode })
  }
}

export class ContainerOomError extends RuntimeError {
  static readonly code = 'CONTAINER_OOM'
  constructor (containerId: string, memoryBytes: number, details?: RuntimeErrorDetails) {
    super('ContainerOomError', ContainerOomError.code,
      `container ${containerId} was killed for exceeding its memory limit of ${memoryBytes} bytes`, details)
  }
}

export class OutputSchemaError extends RuntimeError {
  static readonly code = 'OUTPUT_SCHEMA'
  readonly reason: string
  constructor (containerId: string, reason: string, details?: RuntimeErrorDetails) {
    super('OutputSchemaError', OutputSchemaError.code, `container ${containerId} output does not match its schema: ${reason}`, details)
    this.reason = reason
  }
}

/** The OCI runtime refused to start the container (e.g. its command is not in the image). */
export class ContainerStartError extends RuntimeError {
  static readonly code = 'CONTAINER_START_FAILED'
  constructor (containerId: string, details?: RuntimeErrorDetails) {
    const reason = details?.cause instanceof Error ? `: ${details.cause.message.trim()}` : ''
    super('ContainerStartError', ContainerStartError.code, `container ${containerId} could not start${reason}`, details)
  }
}

/** A job for a service container that is not serving (starting, restarting, failed, ...). */
export class ServiceUnavailableError extends RuntimeError {
  static readonly code = 'SERVICE_UNAVAILABLE'
  readonly state: string
  constructor (containerId: string, state: string, lastError: string, details?: RuntimeErrorDetails) {
    super('ServiceUnavailableError', ServiceUnavailableError.code,
      `service container ${containerId} is ${state}, not healthy` + (lastError === '' ? '' : ` (last error: ${lastError})`) +
      '; try again once it is healthy (see infra status)', details)
    this.state = state
  }
}

/** The service answered the job with a non-2xx status; its body is never passed on as a result. */
export class ServiceHttpError extends RuntimeError {
  static readonly code = 'SERVICE_HTTP_ERROR'
  readonly status: number
  /** The service's own error code from `{"error": {"code"}}` ('' when it sent none). */
  readonly serviceCode: string
  readonly serviceMessage: string
  constructor (containerId: string, status: number, serviceCode: string, serviceMessage: string, details?: RuntimeErrorDetails) {
    super('ServiceHttpError', ServiceHttpError.code,
      `service container ${containerId} answered HTTP ${status}` + (serviceCode === '' ? '' : ` ${serviceCode}`) +
      (serviceMessage === '' ? '' : `: ${serviceMessage}`), details)
    this.status = status
    this.serviceCode = serviceCode
    this.serviceMessage = serviceMessage
  }
}

/** The connection to the service failed mid-call (it crashed, or closed the connection). */
export class ServiceCallError extends RuntimeError {
  static readonly code = 'SERVICE_CALL_FAILED'
  constructor (containerId: string, details?: RuntimeErrorDetails) {
    const reason = details?.cause instanceof Error ? `: ${details.cause.message}` : ''
    super('ServiceCallError', ServiceCallError.code,
      `the call to service container ${containerId} failed${reason}; the node checks the service and restarts it if it died`, details)
  }
}

/** A 2xx answer that breaks the contract: not JSON, or no `output` field, or bytes not as {"base64"}. */
export class ServiceResponseError extends RuntimeError {
  static readonly code = 'SERVICE_BAD_RESPONSE'
  constructor (containerId: string, reason: string, details?: RuntimeErrorDetails) {
    super('ServiceResponseError', ServiceResponseError.code,
      `service container ${containerId} answered 2xx but ${reason} (expected {"output": ...}, see docs/CONTAINERS.md)`, details)
  }
}

/** A service container could not be created, started or published as required (boot of that container). */
export class ServiceStartError extends RuntimeError {
  static readonly code = 'SERVICE_START_FAILED'
  constructor (containerId: string, reason: string, details?: RuntimeErrorDetails) {
    super('ServiceStartError', ServiceStartError.code, `service container ${containerId} could not start: ${reason}`, details)
  }
}

/** A job input that does not fit the container's input schema (service calls re-encode the input). */
export class InputSchemaError extends RuntimeError {
  static readonly code = 'INVALID_INPUT'
  constructor (containerId: string, reason: string) {
    super('InputSchemaError', InputSchemaError.code, `container ${containerId} input does not match its schema: ${reason}`)
  }
}
