/** Every config default, with why it is what it is. config.yaml documents the same values for operators. */
import type { IoSchema, NetworkMode, NodeConfig, OciRuntime, Role } from './types.ts'

const KiB = 1024
const MiB = 1024 * KiB

/** '' = the machine's hostname, so operators see a meaningful name without writing one. */
export const DEFAULT_NODE_NAME = ''
/** A fresh node only executes jobs; coordination roles are opt-in. */
export const DEFAULT_ROLES: readonly Role[] = ['worker']
/** Next to config.yaml, so a checkout runs without touching system folders. */
export const DEFAULT_DATA_DIR = '.data'
/** Per-user, outside the repo, so `git clean` never destroys the node's identity. */
export const DEFAULT_KEY_FILE = '~/.inframind/identity.key'

/** Public job intake listens everywhere: it is the node's service to the network. */
export const DEFAULT_PUBLIC_HOST = '0.0.0.0'
export const DEFAULT_PUBLIC_PORT = 9000
/** The control plane changes the node, so it is loopback only (DESIGN: security properties). */
export const DEFAULT_CONTROL_HOST = '127.0.0.1'
export const DEFAULT_CONTROL_PORT = 9001
/** '' = TCP on the control host/port; a unix socket path wins when set. */
export const DEFAULT_CONTROL_SOCKET = ''
/** gRPC's default; room for 1 MiB outputs plus receipts with a wide margin. */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * MiB
/** Envelope, receipt and fields around a job's bytes inside one gRPC message. */
export const MESSAGE_OVERHEAD_BYTES = 64 * KiB
/** gRPC lengths are int32. */
export const MAX_MESSAGE_BYTES_LIMIT = 2 ** 31 - 1
/** Hosts accepted for the control listener. */
export const LOOPBACK_HOSTS: readonly string[] = ['127.0.0.1', '::1', 'localhost']

/** '' = DOCKER_HOST, else /var/run/docker.sock (Podman's socket works through the same API). */
export const DEFAULT_RUNTIME_SOCKET = ''
/** Inspect/create/remove are quick; 30 s still covers an engine busy pulling or pruning. */
export const DEFAULT_ENGINE_TIMEOUT_MS = 30_000

/** Edge hardware has few cores; two concurrent containers keep latency predictable. */
export const DEFAULT_CONCURRENCY = 2
/** Enough to absorb a burst; beyond it clients get RESOURCE_EXHAUSTED and retry elsewhere. */
export const DEFAULT_QUEUE_SIZE = 64
/**
 * Mesh jobs a gateway keeps in flight at once. A mesh job holds no executor slot, only a record and
 * a few timers while it waits on the network, so hundreds are cheap; the workers' slots are the real limit.
 */
export const DEFAULT_GATEWAY_MAX_IN_FLIGHT = 256
/** Mesh jobs waiting for an in-flight place; beyond this SubmitJob answers RESOURCE_EXHAUSTED. */
export const DEFAULT_GATEWAY_QUEUE_SIZE = 1024
/** Unverified unless a job asks (a verified job costs v more runs on the mesh). */
export const DEFAULT_VERIFICATION_METHOD: 'none' | 'signature' | 'reexecute' = 'none'
export const DEFAULT_VERIFICATION_VALIDATORS = 2
export const DEFAULT_MAX_VERIFICATION_VALIDATORS = 5
/** A certificate lists at most 64 chosen validators (src/verification/certificate.ts MAX_CHOSEN). */
export const MAX_VERIFICATION_VALIDATORS = 16
/** A job that has not finished in a minute is better reassigned than waited for. */
export const DEFAULT_DEADLINE_MS = 60_000

/** Inside data_dir. */
export const DEFAULT_STORE_PATH = 'store'
/** Bounded disk use on small devices; old results are evicted least-recently-used. */
export const DEFAULT_MAX_RESULTS = 1000

/** Metrics are cheap and local; Prometheus on the same host scrapes them. */
export const DEFAULT_METRICS_ENABLED = true
export const DEFAULT_METRICS_HOST = '127.0.0.1'
/** The port range Prometheus assigns to exporters. */
export const DEFAULT_METRICS_PORT = 9464
/** The REST API (Infernet-compatible) is a second public intake: off until an operator names an address. */
export const DEFAULT_REST_LISTEN = ''
/** Room for a 1m job input written as JSON (escapes can double it) plus the request around it. */
export const DEFAULT_REST_MAX_BODY_BYTES = 4 * MiB
/**
 * Jobs in one POST /api/jobs/batch (Infernet sets no limit): a burst of a client's work, while one
 * request stays a small share of the event loop (each job is a store write).
 */
export const DEFAULT_REST_MAX_BATCH = 100
export const MAX_REST_BATCH = 10_000
/** The dashboard is for the operator at the machine (or through an SSH tunnel): loopback only. */
export const DEFAULT_DASHBOARD_HOST = '127.0.0.1'
/** Next to the API's 9000/9001 and clear of the metrics port. */
export const DEFAULT_DASHBOARD_PORT = 9090
export const DEFAULT_LOG_LEVEL: NodeConfig['telemetry']['logLevel'] = 'info'
export const LOG_LEVELS: ReadonlyArray<NodeConfig['telemetry']['logLevel']> = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']
export const ROLES: readonly Role[] = ['worker', 'scheduler', 'gateway', 'validator', 'archive', 'relay']

/** One core: a job never starves the node itself on a small device. */
export const DEFAULT_CONTAINER_CPUS = 1
/** Enough for a small model runtime; raise per container. */
export const DEFAULT_CONTAINER_MEMORY_BYTES = 256 * MiB
/** Docker refuses memory limits below 6 MiB. */
export const MIN_CONTAINER_MEMORY_BYTES = 6 * MiB
/** Stops fork bombs while leaving room for a runtime's worker threads. */
export const DEFAULT_CONTAINER_PIDS = 64
export const DEFAULT_CONTAINER_GPU = false
/** A one-shot job is seconds of work; longer ones must say so. */
export const DEFAULT_CONTAINER_TIMEOUT_MS = 30_000
/** Outputs travel inline in gRPC replies and receipts are about them: keep them small by default. */
export const DEFAULT_MAX_OUTPUT_BYTES = 1 * MiB
export const DEFAULT_MAX_INPUT_BYTES = 1 * MiB
/** `bytes` accepts anything; a container declares a stricter schema when it has one. */
export const DEFAULT_IO_SCHEMA: IoSchema = 'bytes'
/** No network unless the container's config asks (DESIGN: security properties). */
export const DEFAULT_NETWORK: NetworkMode = 'none'
/** nobody:nogroup — never root. */
export const DEFAULT_CONTAINER_USER = '65534:65534'
export const NETWORK_MODES: readonly NetworkMode[] = ['none', 'bridge']
/** The engine's own runtime: every engine has it, and it starts a container in well under a second. */
export const DEFAULT_OCI_RUNTIME: OciRuntime = 'runc'
export const OCI_RUNTIMES: readonly OciRuntime[] = ['runc', 'runsc']
/**
 * Under runsc the gVisor sandbox's own threads count against the container's pids limit: 38 host
 * tasks for an idle job on a 2-CPU machine, and below ~48 the sandbox cannot even start (Go's
 * "newosproc"). 128 leaves room for the job and for machines with more CPUs (more Go threads).
 */
export const MIN_RUNSC_PIDS = 128
/** The gVisor sandbox's memory also counts against the limit: measured, 8 MiB cannot start it, 16 MiB can. */
export const MIN_RUNSC_MEMORY_BYTES = 32 * MiB

/** Jobs reach a container from outside unless it is marked internal (a chain-only step). */
export const DEFAULT_EXTERNAL = true
export const DEFAULT_CONTAINER_MODE = 'oneshot'
export const CONTAINER_MODES = ['oneshot', 'service'] as const
/** The job endpoint and health endpoint of service containers (docs/CONTAINERS.md). */
export const DEFAULT_SERVICE_PATH = '/'
export const DEFAULT_HEALTH_PATH = '/health'
/** A service speaks our own contract unless it declares Infernet's. */
export const DEFAULT_CONTAINER_PROTOCOL = 'inframind'
export const CONTAINER_PROTOCOLS = ['inframind', 'infernet'] as const
/** Infernet images listen on 3000 inside the container (the Infernet node maps "3000/tcp"). */
export const INFERNET_SERVICE_PORT = 3000
/** The one job path of the Infernet container contract. */
export const INFERNET_SERVICE_PATH = '/service_output'
/**
 * The Infernet node never health-checks its containers, so an Infernet image need not have
 * /health; the ones Ritual publishes all answer GET / (an index message), which any server has.
 */
export const INFERNET_HEALTH_PATH = '/'
/** Infernet job data is a JSON value and its containers answer JSON. */
export const INFERNET_IO_SCHEMA: IoSchema = 'json'
/** Model servers load weights before answering; a minute covers small models on slow disks. */
export const DEFAULT_STARTUP_TIMEOUT_MS = 60_000
/** Frequent enough to notice a dead server within seconds, rare enough to cost nothing. */
export const DEFAULT_HEALTH_INTERVAL_MS = 5_000
export const DEFAULT_HEALTH_TIMEOUT_MS = 2_000
/** One slow answer is not an outage; three in a row is. */
export const DEFAULT_UNHEALTHY_THRESHOLD = 3
/** After this many restarts the container is given up on and reported failed, not restarted forever. */
export const DEFAULT_MAX_RESTARTS = 5
export const DEFAULT_RESTART_BACKOFF_MS = 1_000
export const DEFAULT_RESTART_BACKOFF_MAX_MS = 30_000
/** Loading a model image from a tar or registry can take minutes; it never eats a job's run time. */
export const DEFAULT_PULL_TIMEOUT_MS = 600_000
/** Create + start of a service container; its warm-up has its own startup_timeout_ms. */
export const DEFAULT_START_TIMEOUT_MS = 60_000
/** Room for a few unused model images on an edge disk before the oldest are removed. */
export const DEFAULT_IMAGE_BUDGET_BYTES = 10 * 1024 * MiB
export const DEFAULT_PREFETCH = true

/** A node joins the mesh unless told not to: it is how schedulers find workers. */
export const DEFAULT_MESH_ENABLED = true
/** libp2p's customary TCP port. */
export const DEFAULT_MESH_LISTEN: readonly string[] = ['/ip4/0.0.0.0/tcp/4001']
/** Plenty for a mesh of edge nodes; bounds memory and file descriptors on small devices. */
export const DEFAULT_MAX_CONNECTIONS = 100
/** Within the 1–5 s the design asks for: liveness within a few seconds at a few hundred bytes each. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 2_000
export const DEFAULT_FORWARD_STATS = true
/** Gossip carries small signed messages; bulk data moves over the fetch protocol. */
export const DEFAULT_MAX_GOSSIP_BYTES = 64 * KiB
/** Generous for unsynchronised edge clocks, short enough that replays go stale. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 30_000
/** Far inside the DHT's provider record lifetime, so records never lapse. */
export const DEFAULT_PROVIDE_INTERVAL_MS = 10 * 60_000
/** "A few KiB" inline (DESIGN: job flow); beyond it, fetch by hash. */
export const DEFAULT_INLINE_BYTES = 4 * KiB
/**
 * Point to point first: an assignment over the worker's gRPC AssignJob reaches only that worker
 * (gossip would carry it, and any inline input, to every node); gossip remains the fallback.
 */
export const DEFAULT_ASSIGN_VIA = 'grpc'

/** Where config.yaml is looked for when neither an argument nor INFRAMIND_CONFIG names one. */
export const DEFAULT_CONFIG_FILE = 'config.yaml'
/** Alias expansion limit while parsing YAML: stops "billion laughs" documents. */
export const MAX_YAML_ALIASES = 100

/**
 * A worker acks at once (the job runs after the ack), so seconds of silence mean it is gone or
 * overloaded and the next candidate should have the job; long enough for a busy edge box to answer.
 */
export const DEFAULT_ACK_TIMEOUT_MS = 3_000

/** Secure by default: strangers cannot connect, and nobody acts as a scheduler by saying so. */
export const DEFAULT_ADMISSION_MODE = 'private'
/** Rosters name the mesh they are for; one operator may run several meshes. */
export const DEFAULT_MESH_NAME = 'inframind'
/** Inside data_dir (like the store): the key and the roster are this node's state. */
export const DEFAULT_NETWORK_KEY_FILE = 'mesh.key'
export const DEFAULT_ROSTER_FILE = 'roster.json'

/** Each record on two archives: one may die or lose its disk without a proof being lost. */
export const DEFAULT_ARCHIVE_REPLICAS = 2
/** The most replicas: past a handful, more copies cost disk and sync traffic for little safety. */
export const MAX_ARCHIVE_REPLICAS = 16
/** A restarted archive is whole again within seconds; a round costs little when nothing is new. */
export const DEFAULT_ARCHIVE_SYNC_INTERVAL_MS = 5_000
/** Generous: keeping proofs is an archive's whole purpose, and its disk is sized for it. */
export const DEFAULT_ARCHIVE_MAX_BYTES = 16 * 1024 * MiB
/** Two years: disputes and audits come late. */
export const DEFAULT_ARCHIVE_MAX_AGE_DAYS = 730
