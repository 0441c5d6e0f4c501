/** Shapes of the protobuf messages as @grpc/proto-loader presents them (see LOADER_OPTIONS). */

export type WireJobState = 'JOB_STATE_UNSPECIFIED' | 'JOB_STATE_PENDING' | 'JOB_STATE_RUNNING' | 'JOB_STATE_SUCCESS' | 'JOB_STATE_FAILED'

export interface WireEnvelope {
  payloadType: string
  payload: Buffer
  publicKey: Buffer
  signature: Buffer
}

export interface WireResources { cpus: number, memoryBytes: number, pids: number, gpu: boolean }

export interface WireContainerInfo {
  id: string
  image: string
  digest: string
  inputSchema: string
  outputSchema: string
  resources: WireResources
  timeoutMs: number
  maxOutputBytes: number
  network: string
  imagePresent: boolean
  description: string
  mode: string
  state: string
  restarts: number
  external: boolean
  lastError: string
  generatesProofs: boolean
}

export interface WireHardware {
  cpuModel: string
  cpuCores: number
  memoryBytes: number
  gpus: Array<{ name: string, memoryBytes: number }>
  arch: string
  platform: string
}

export interface WireNodeInfo {
  nodeId: string
  version: string
  roles: string[]
  containers: WireContainerInfo[]
  hardware: WireHardware
  uptimeMs: number
}

export interface WireSubmitJobRequest { containerId: string, input: Buffer, deadlineMs: number, jobId: string, containers: string[], requiresProof: boolean, delegate: string }
export interface WireSubmitJobResponse { jobId: string, state: WireJobState, duplicate: boolean }

export interface WireStateChange { state: WireJobState, atMs: number, detail: string }

export interface WireJob {
  jobId: string
  containerId: string
  state: WireJobState
  output: Buffer
  error: string
  exitCode: number
  receipt: WireEnvelope | null
  history: WireStateChange[]
  createdAtMs: number
  startedAtMs: number
  finishedAtMs: number
  latencyMs: number
  inputBytes: number
  deadlineAtMs: number
  errorCode: string
  containers: string[]
  steps: WireJobStep[]
}

export interface WireJobStep {
  containerId: string
  imageDigest: string
  output: Buffer
  outputHash: Buffer
  exitCode: number
  latencyMs: number
  status: string
  error: string
  outputBytes: number
}

export interface WireJobEvent { jobId: string, state: WireJobState, atMs: number, detail: string, job: WireJob | null }

export interface WireJobSummary {
  jobId: string
  containerId: string
  state: WireJobState
  createdAtMs: number
  finishedAtMs: number
  latencyMs: number
  error: string
}

export interface WireNodeStatus {
  nodeId: string
  version: string
  jobsServed: number
  avgLatencyMs: number
  uptimeMs: number
  succeeded: number
  failed: number
  activeJobs: number
  queuedJobs: number
  cpuPercent: number
  rssBytes: number
  memoryTotalBytes: number
  memoryUsedBytes: number
  containers: WireContainerInfo[]
  roles: string[]
  metricsUrl: string
  imageCacheHits: number
  imageCacheMisses: number
  imageCacheHitRatio: number
  guardianRejections: number
}

export interface WireNodeEvent {
  atMs: number
  kind: string
  jobId: string
  state: WireJobState
  containerId: string
  detail: string
}

export interface WirePeerInfo {
  nodeId: string
  roles: string[]
  containers: string[]
  addresses: string[]
  latencyMs: number
  lastSeenMs: number
  connected: boolean
  alive: boolean
  freeSlots: number
  load: number
}

export interface WirePeersResponse {
  nodeId: string
  addresses: string[]
  peers: WirePeerInfo[]
  rejected: Record<string, number>
}
