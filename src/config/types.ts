/** Typed node configuration, produced once by loadConfig() from config.yaml (snake_case keys there). */

export type Role = 'worker' | 'scheduler' | 'gateway' | 'validator' | 'archive' | 'relay'

/** How a container's stdin/stdout bytes are interpreted and checked. */
export type IoSchema = 'text' | 'json' | 'bytes' | 'embedding<float>'

export type NetworkMode = 'none' | 'bridge'

export interface ContainerResources {
  /** CPU cores (fractional allowed), mapped to NanoCpus. */
  cpus: number
  /** Memory limit in bytes; swap is disabled (MemorySwap = Memory). */
  memoryBytes: number
  /** Maximum number of processes/threads in the container. */
  pids: number
  /** Needs an NVIDIA GPU (Docker device request). */
  gpu: boolean
}

export interface ContainerConfig {
  /** Name jobs use to address this container (e.g. "echo"). */
  id: string
  description: string
  /** Image reference in the local engine (e.g. "inframind/echo:1"). */
  image: string
  /** Pinned image digest (sha256:<64 hex>): the image id the engine reports must equal it. */
  digest: string
  /** Command (argv) run in the container; empty = the image's default. */
  command: string[]
  env: Record<string, string>
  resources: ContainerResources
  /** Wall-clock limit of one run, in milliseconds. */
  timeoutMs: number
  /** stdout above this many bytes fails the job; the node never buffers more. */
  maxOutputBytes: number
  /** Job input above this many bytes is refused at submission. */
  maxInputBytes: number
  inputSchema: IoSchema
  outputSchema: IoSchema
  network: NetworkMode
  /** uid:gid the process runs as; never root. */
  user: string
}

export interface ListenAddress {
  host: string
  port: number
}

export interface NodeConfig {
  /** Absolute path of the file this was loaded from ('' when built in code). */
  path: string
  node: {
    name: string
    roles: Role[]
    /** Directory for the store and other state. */
    dataDir: string
  }
  identity: {
    /** ed25519 key file (created 0600 on first launch when missing). */
    keyFile: string
  }
  api: {
    public: ListenAddress
    /** Loopback control listener; `socket` (unix socket path) wins over host/port when set. */
    control: ListenAddress & { socket: string }
    /** Largest gRPC message accepted or sent, in bytes. */
    maxMessageBytes: number
  }
  runtime: {
    /** Docker API socket path; '' = DOCKER_HOST, else /var/run/docker.sock. */
    socket: string
    /** Timeout for engine calls that are not container runs (inspect, create, remove). */
    engineTimeoutMs: number
  }
  jobs: {
    /** Jobs run at the same time. */
    concurrency: number
    /** Pending jobs waiting for a slot; above this SubmitJob answers RESOURCE_EXHAUSTED. */
    queueSize: number
    /** Deadline of a job submitted without one, in milliseconds. */
    defaultDeadlineMs: number
  }
  store: {
    /** LevelDB directory; relative paths resolve against node.dataDir. */
    path: string
    /** Completed jobs kept; beyond this the least recently used are evicted. */
    maxResults: number
  }
  telemetry: {
    metrics: ListenAddress & { enabled: boolean }
    logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'
  }
  containers: ContainerConfig[]
}
