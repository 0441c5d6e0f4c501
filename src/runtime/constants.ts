/** Defaults of the container runtime, each with the reason for its value. */

/** Where Docker (and Podman's Docker-compatible service) listen unless DOCKER_HOST says otherwise. */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock'

/** Engine calls other than a container's run (ping, inspect, create, start, remove) take ms; 10 s
 * tolerates a loaded engine but still turns a hung one into an error instead of a stuck job. */
export const DEFAULT_ENGINE_TIMEOUT_MS = 10_000

/**
 * /tmp and /dev/shm are the only writable places in a job container, both mounted with these options:
 * bounded, nothing on them can be executed, and their pages count against the memory limit (tmpfs
 * pages are charged to the memory cgroup of the process that writes them).
 */
export const TMPFS_TMP_OPTIONS = 'rw,noexec,nosuid,nodev,size=64m'

/**
 * How often the engine is asked again which OCI runtimes it has (GET /info), while a container that
 * needs one other than the default is checked: a runtime registered with a reload of dockerd is seen
 * within seconds, and a burst of jobs costs the engine one request.
 */
export const OCI_RUNTIMES_REFRESH_MS = 5_000

/** stderr is diagnostics only: the last few KiB are enough for a receipt and bounded in memory. */
export const STDERR_TAIL_BYTES = 4096
/**
 * Total stderr a job may write before it is killed. Only a tail is kept, but an endless stderr flood
 * still burns CPU, and on Podman (whose output is read back from a log file) it fills the disk.
 */
export const MAX_STDERR_BYTES = 16 * 1024 * 1024

/** Labels on every job container, so leftovers (e.g. after a crash) can be found and removed. */
export const LABEL_JOB = 'inframind.job'
export const LABEL_CONTAINER = 'inframind.container'
export const LABEL_RUNTIME = 'inframind.runtime'
/**
 * The node id of the node whose runtime created the container (job and service containers alike).
 * At start a node removes every container carrying its own id (leftovers of a run that was killed);
 * another node's id (several nodes may share one engine, as on a devnet) or no label is never touched.
 */
export const LABEL_NODE = 'inframind.node'
/** `oneshot` (one job's container) or `service` (a warm service container): says which cleanup applies. */
export const LABEL_KIND = 'inframind.kind'
export const KIND_ONESHOT = 'oneshot'
export const KIND_SERVICE = 'service'

/** Leftovers are removed a few at a time at start: dozens go in seconds, and a small box's engine
 * is not swamped with removals while the node boots. */
export const REAP_CONCURRENCY = 4
/** The whole cleanup at start may take this many engine timeouts (the list, then the removals):
 * a slow engine delays the boot by a bounded time, and what is left then goes at the next start. */
export const REAP_ENGINE_TIMEOUTS = 3

/** Docker's `docker run` exit code for a SIGKILLed process (128 + 9). */
export const EXIT_SIGKILL = 137

/** Container names are limited; the job id part is truncated to keep names readable. */
export const CONTAINER_NAME_JOB_CHARS = 40

/** GPU jobs get every NVIDIA GPU through the nvidia container toolkit (same as `--gpus all`). */
export const NVIDIA_DEVICE_REQUEST = { Driver: 'nvidia', Count: -1, Capabilities: [['gpu']] } as const

/** How long `nvidia-smi` may take before the node decides it has no usable GPU. */
export const NVIDIA_SMI_TIMEOUT_MS = 5_000

/** Label on every service container: its value is the configured container id. */
export const LABEL_SERVICE = 'inframind.service'

/** Creating and starting a service container (not its warm-up) may take this long by default. */
export const DEFAULT_SERVICE_START_TIMEOUT_MS = 60_000

/** Readiness polls while a service warms up: often enough that a ready server is used within a
 * fraction of a second, rare enough that a slow starter is not busy-looped. */
export const STARTUP_POLL_MS = 150

/** A service answering a job with something other than 2xx: this much of a non-JSON body is kept. */
export const SERVICE_ERROR_BODY_BYTES = 512

/** A service response carries the output inside JSON (`{"output": ...}`, base64 for bytes, escaped
 * strings): the body may be this much bigger than max_output_bytes before the node stops reading. */
export const SERVICE_BODY_OVERHEAD_FACTOR = 2
export const SERVICE_BODY_OVERHEAD_BYTES = 64 * 1024

/** Output (stdout and stderr, interleaved) kept from a service container, for the error of a crash. */
export const SERVICE_LOG_TAIL_BYTES = 2048

/** One-shot image readiness is re-checked (one inspect) at most this often while it reads `missing`. */
export const ONESHOT_STATUS_REFRESH_MS = 5_000
