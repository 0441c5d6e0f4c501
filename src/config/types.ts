/** Typed node configuration, produced once by loadConfig() from config.yaml (snake_case keys there). */

export type Role = 'worker' | 'scheduler' | 'gateway' | 'validator' | 'archive' | 'relay'

/** How a container's stdin/stdout bytes are interpreted and checked. */
export type IoSchema = 'text' | 'json' | 'bytes' | 'embedding<float>'

export type NetworkMode = 'none' | 'bridge'

/**
 * The OCI runtime a container runs under. runc: the engine's default (runc on Docker). runsc: gVisor,
 * a user-space kernel between the job and the host's, for images that are not trusted; the engine
 * must have it registered (docs/ARCHITECTURE.md, "The sandbox"), else the container never runs.
 */
export type OciRuntime = 'runc' | 'runsc'

/** oneshot: a fresh container per job; service: a long-running server the node calls over HTTP. */
export type ContainerMode = 'oneshot' | 'service'

/**
 * How a service container is called (docs/CONTAINERS.md). inframind: our own contract (POST
 * {job_id, input, origin}, answer {output}). infernet: Ritual Infernet's (POST /service_output with
 * {source, destination, data, requires_proof}, answer any JSON), so Infernet images run unchanged.
 */
export type ContainerProtocol = 'inframind' | 'infernet'

/** How a `mode: service` container is reached and watched (docs/CONTAINERS.md has the contract). */
export interface ServiceConfig {
  /** Port the server listens on inside the container; published on 127.0.0.1 only. */
  port: number
  /** Path of the job endpoint (HTTP POST). */
  path: string
  /** Path of the health endpoint (HTTP GET, 2xx = healthy). */
  healthPath: string
  /** How long the server may take to answer its first health check. */
  startupTimeoutMs: number
  /** Time between health checks once running. */
  healthIntervalMs: number
  /** One health check's timeout. */
  healthTimeoutMs: number
  /** Consecutive failed checks that make the service unhealthy (and restarted). */
  unhealthyThreshold: number
  /** Restarts tried before the service is given up on (state "failed"). */
  maxRestarts: number
  /** First restart delay; doubles each try up to restartBackoffMaxMs. */
  restartBackoffMs: number
  restartBackoffMaxMs: number
}

/** Where an image comes from when the engine does not have it (tried in order after the local cache). */
export interface ImageSource {
  /** HTTP(S) URL of an image tar (`docker save` format); '' = none. */
  url: string
  /** sha256 (hex) of the tar file; required with url. Checked before anything is loaded. */
  sha256: string
  /** Try `docker pull` of `image` from its registry. */
  pull: boolean
  /** Registry credentials for pull ('' = anonymous). Never logged. */
  username: string
  password: string
}
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
  /** OCI runtime of its containers (job and service); never swapped for another one. */
  runtime: OciRuntime
  /** uid:gid the process runs as; never root. */
  user: string
  mode: ContainerMode
  /** How the node calls a service container; always 'inframind' for one-shot containers. */
  protocol: ContainerProtocol
  /** Present when mode is service. */
  service?: ServiceConfig
  source: ImageSource
  /** May be the first container of a job (false = only after another container in a chain). */
  external: boolean
  /** CIDRs allowed to submit jobs naming this container (empty = any origin). */
  allowedIps: string[]
  /** Peer ids allowed to send mesh jobs for this container (empty = any). */
  allowedPeers: string[]
  /** Delegates (node ids) allowed to send delegated work (empty = any). */
  allowedDelegates: string[]
  /** This container's output carries a proof (required when a job asks for one). */
  generatesProofs: boolean
  /**
   * This node admits jobs for it (its Guardian, limits and schema apply here) but never runs it: a
   * worker on the mesh does. Implied for every container of a node without the worker role.
   */
  meshOnly: boolean
  /**
   * The same input always gives the same output bytes (no clock, randomness or sampling in the
   * output), so validators may check it by re-execution. False unless declared.
   */
  deterministic: boolean
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
    /** Timeout for fetching one image (tar download + load, or registry pull); separate from run time. */
    pullTimeoutMs: number
    /** Timeout for starting a service container (create + start), separate from its warm-up. */
    startTimeoutMs: number
    /** Disk budget for images no configured container uses; beyond it the least recently used are removed. */
    imageBudgetBytes: number
    /** Fetch every configured container's image at boot. */
    prefetch: boolean
  }
  jobs: {
    /** Jobs run at the same time. */
    concurrency: number
    /** Pending jobs waiting for a slot; above this SubmitJob answers RESOURCE_EXHAUSTED. */
    queueSize: number
    /** Deadline of a job submitted without one, in milliseconds. */
    defaultDeadlineMs: number
  }
  /** Job intake for the mesh (a node with the gateway or scheduler role forwarding jobs it does not run). */
  gateway: {
    /** Mesh jobs awaiting their worker at once; they hold no executor slot. */
    maxInFlight: number
    /** Mesh jobs waiting for an in-flight place; above this SubmitJob answers RESOURCE_EXHAUSTED. */
    queueSize: number
    /** How results are checked when a job does not say (SubmitJobRequest.verification). */
    verification: {
      defaultMethod: 'none' | 'signature' | 'reexecute'
      /** v when a job asks for validators without a number. */
      defaultValidators: number
      /** The largest v this gateway honours. */
      maxValidators: number
    }
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
  mesh: MeshConfig
  containers: ContainerConfig[]
  /** The archive role's settings (read only on a node with the archive role). */
  archive: ArchiveConfig
  /** The read-only web dashboard (loopback only; `listen: ""` turns it off). */
  dashboard: DashboardConfig
  /** The Infernet-compatible REST API (docs/REST.md); off unless `rest.listen` names an address. */
  rest: RestConfig
}

export interface RestConfig extends ListenAddress {
  /** `rest.listen` named an address ("" = off). */
  enabled: boolean
  /** Largest request body accepted; larger ones get 413. */
  maxBodyBytes: number
  /** Most jobs in one POST /api/jobs/batch. */
  maxBatch: number
}

export interface DashboardConfig extends ListenAddress {
  enabled: boolean
}

export interface MeshConfig {
  /** Join the libp2p mesh (false = a standalone node: gRPC only). */
  enabled: boolean
  /** libp2p listen multiaddrs. */
  listen: string[]
  /** Addresses to advertise instead of the listen ones ([] = the listen addresses). */
  announce: string[]
  /** Peers dialled at start (multiaddrs ending in /p2p/<node id>). */
  bootstrap: string[]
  /** Connection limit of the libp2p connection manager. */
  maxConnections: number
  /** Time between heartbeats (1–5 s). */
  heartbeatIntervalMs: number
  /** false = heartbeats carry only liveness and capabilities, no load or job statistics. */
  forwardStats: boolean
  /** Schedulers whose assignments this worker accepts ([] = any scheduler on the mesh). */
  trustedSchedulers: string[]
  /** Largest gossip message accepted; larger ones are rejected (and the sender scored down). */
  maxGossipBytes: number
  /** Messages stamped further than this from our clock are rejected as stale (or from the future). */
  maxClockSkewMs: number
  /** How often provider records (roles, containers) are re-announced in the DHT. */
  provideIntervalMs: number
  /** Inputs/outputs up to this size travel inline; larger ones by sha256 over /inframind/fetch/1.0.0. */
  inlineBytes: number
  /** Reach others through circuit relays (relay multiaddrs in `relays`). */
  behindNat: boolean
  relays: string[]
  /**
   * How this node, as a scheduler, sends assignments: 'grpc' = the worker's AssignJob when its
   * heartbeat names a reachable gRPC address (gossip when it names none or cannot be reached);
   * 'gossip' = always on the assignments topic.
   */
  assignVia: 'grpc' | 'gossip'
  /** How long this node, as a scheduler, waits for a worker's signed ack before trying the next worker. */
  ackTimeoutMs: number
  /** Who may join the mesh and who may act as what (docs/ARCHITECTURE.md, "Admission"). */
  admission: AdmissionConfig
}

/**
 * private: only nodes holding the mesh's pre-shared key can connect at all, and the operator-signed
 * roster says which roles each member may play. open: anyone may connect and offer to work (on
 * probation unless rostered); roles others must trust still come only from the roster.
 */
export type AdmissionMode = 'private' | 'open'

export interface AdmissionConfig {
  mode: AdmissionMode
  /** Name of the mesh: a roster signed for another mesh is refused. */
  meshName: string
  /** The mesh's pre-shared key (libp2p swarm key format, 0600); private mode only. */
  networkKeyFile: string
  /** Node ids (12D3KooW...) of the operator keys whose signed rosters this node accepts. */
  operators: string[]
  /** The roster this node holds: read at start, rewritten on each accepted update. */
  rosterFile: string
}

/** `archive:` in config.yaml: how an archive replicates and how long it keeps records. */
export interface ArchiveConfig {
  /** Archives that hold each record (rendezvous over the live ones). */
  replicas: number
  /** An archive catches up from each other live archive this often. */
  syncIntervalMs: number
  retention: {
    /** Bytes of records kept before the oldest are evicted (`max_bytes`, a size). */
    maxBytes: number
    /** Records stored longer ago are evicted (`max_age_days` in the file). */
    maxAgeMs: number
  }
}
