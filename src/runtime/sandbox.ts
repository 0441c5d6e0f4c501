/** The sandbox every job container runs in, as pure functions of its config (unit-testable). */
import { randomBytes } from 'node:crypto'
import type { ContainerConfig, OciRuntime } from '../config/types.ts'
import {
  CONTAINER_NAME_JOB_CHARS, KIND_ONESHOT, KIND_SERVICE, LABEL_CONTAINER, LABEL_JOB, LABEL_KIND, LABEL_NODE, LABEL_RUNTIME, LABEL_SERVICE,
  NVIDIA_DEVICE_REQUEST, TMPFS_TMP_OPTIONS
} from './constants.ts'
import { UnsafeUserError } from './errors.ts'

/** The HostConfig fields the runtime sets (a subset of Docker's). */
export interface SandboxHostConfig {
  NetworkMode: 'none' | 'bridge'
  ReadonlyRootfs: true
  Tmpfs: Record<string, string>
  CapDrop: string[]
  SecurityOpt: string[]
  Privileged: false
  IpcMode: 'private'
  PidsLimit: number
  Memory: number
  MemorySwap: number
  NanoCpus: number
  AutoRemove: false
  LogConfig: { Type: string, Config: Record<string, string> }
  DeviceRequests?: Array<{ Driver: string, Count: number, Capabilities: string[][] }>
  /** Only for a runtime other than the engine's default (see ContainerConfig.runtime). */
  Runtime?: OciRuntime
}

export function buildHostConfig (container: ContainerConfig): SandboxHostConfig {
  const { resources } = container
  const host: SandboxHostConfig = {
    NetworkMode: container.network === 'bridge' ? 'bridge' : 'none',
    ReadonlyRootfs: true,
    // /dev/shm under the same rules as /tmp. Docker's own /dev/shm (64 MiB, noexec) would do as much
    // today, but only by the engine's defaults (and --default-shm-size); this way both are in the
    // request, and Docker mounts no /dev/shm of its own when the request has one.
    Tmpfs: { '/tmp': TMPFS_TMP_OPTIONS, '/dev/shm': TMPFS_TMP_OPTIONS },
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    Privileged: false,
    IpcMode: 'private',
    PidsLimit: resources.pids,
    Memory: resources.memoryBytes,
    // Equal to Memory: no swap, so a memory hog is OOM-killed instead of thrashing the host's disk.
    MemorySwap: resources.memoryBytes,
    NanoCpus: Math.round(resources.cpus * 1e9),
    // The runtime removes the container itself, after reading its exit state (OOMKilled).
    AutoRemove: false,
    // Output is read from the attach stream; the engine keeping a copy on disk would only let job
    // outputs outlive the job (and cost disk writes on every run).
    LogConfig: { Type: 'none', Config: {} }
  }
  // The default runtime is left to the engine: naming "runc" would fail on a Podman that runs crun.
  if (container.runtime !== 'runc') host.Runtime = container.runtime
  if (resources.gpu) {
    host.DeviceRequests = [{
      Driver: NVIDIA_DEVICE_REQUEST.Driver,
      Count: NVIDIA_DEVICE_REQUEST.Count,
      Capabilities: NVIDIA_DEVICE_REQUEST.Capabilities.map((caps) => [...caps])
    }]
  }
  return host
}

/**
 * Refuses any user that could be root: only numeric "uid" or "uid:gid", both non-zero, are accepted,
 * because a user *name* is resolved through the image's own /etc/passwd and may map to uid 0.
 */
export function assertSafeUser (container: ContainerConfig): void {
  const match = /^(\d+)(?::(\d+))?$/.exec(container.user)
  const uid = match?.[1] === undefined ? 0 : Number(match[1])
  const gid = match?.[2] === undefined ? undefined : Number(match[2])
  if (match === null || uid === 0 || gid === 0) throw new UnsafeUserError(container.id, container.user)
}

/** The engine behind the Docker API: they differ in how a job's output is best read (docs/PODMAN.md). */
export type Engine = 'docker' | 'podman'

/**
 * The log driver of a job container. Docker: none, as buildHostConfig says. Podman 4.3 can drop the
 * attach stream's output of a container that exits within milliseconds, so there the output is read
 * from the container's log after it exits, and conmon writes that log (k8s-file) until the removal.
 */
export function jobLogConfig (engine: Engine): SandboxHostConfig['LogConfig'] {
  return engine === 'podman' ? { Type: 'k8s-file', Config: {} } : { Type: 'none', Config: {} }
}

export interface CreateSpec {
  name: string
  Image: string
  Cmd?: string[]
  Env: string[]
  Labels: Record<string, string>
  User: string
  AttachStdin: true
  AttachStdout: true
  AttachStderr: true
  OpenStdin: true
  StdinOnce: true
  Tty: false
  HostConfig: SandboxHostConfig
}

/**
 * The labels that say who owns a container: its kind always, and the node id when the runtime has
 * one (only then can a later start of the same node recognise the container as its own leftover).
 */
export function ownerLabels (kind: typeof KIND_ONESHOT | typeof KIND_SERVICE, nodeId: string | undefined): Record<string, string> {
  return nodeId === undefined ? { [LABEL_KIND]: kind } : { [LABEL_KIND]: kind, [LABEL_NODE]: nodeId }
}

/**
 * Everything `POST /containers/create` gets for one job; `imageId` is the verified id, never a tag.
 * `engine` (default docker) only changes the log driver, see jobLogConfig; `nodeId` labels the
 * container as this node's (see LABEL_NODE).
 */
export function buildCreateSpec (opts: { jobId: string, container: ContainerConfig, imageId: string, runtimeId: string, engine?: Engine, nodeId?: string }): CreateSpec {
  const { jobId, container, imageId, runtimeId } = opts
  // JOB_ID comes first and cannot be overridden by the container's env.
  const env = [`JOB_ID=${jobId}`]
  for (const [key, value] of Object.entries(container.env)) {
    if (key !== 'JOB_ID') env.push(`${key}=${value}`)
  }
  const spec: CreateSpec = {
    name: containerName(jobId),
    Image: imageId,
    Env: env,
    Labels: { [LABEL_JOB]: jobId, [LABEL_CONTAINER]: container.id, [LABEL_RUNTIME]: runtimeId, ...ownerLabels(KIND_ONESHOT, opts.nodeId) },
    User: container.user,
    // stdin carries the job input: attached before start, closed (StdinOnce) once it is written.
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: true,
    StdinOnce: true,
    Tty: false,
    HostConfig: { ...buildHostConfig(container), LogConfig: jobLogConfig(opts.engine ?? 'docker') }
  }
  if (container.command.length > 0) spec.Cmd = [...container.command]
  return spec
}

/** Unique, recognisable name; it also lets a create that timed out be found and removed. */
export function containerName (jobId: string): string {
  const safe = jobId.replace(/[^a-zA-Z0-9_.-]/g, '_').slice(0, CONTAINER_NAME_JOB_CHARS)
  return `inframind-${safe}-${randomBytes(4).toString('hex')}`
}

/** Where a service container's port is published: loopback only, on a port the engine picks. */
export const SERVICE_HOST_IP = '127.0.0.1'

export interface ServiceHostConfig extends Omit<SandboxHostConfig, 'NetworkMode'> {
  NetworkMode: 'bridge'
  PortBindings: Record<string, Array<{ HostIp: string, HostPort: string }>>
}

export interface ServiceCreateSpec {
  name: string
  Image: string
  Cmd?: string[]
  Env: string[]
  Labels: Record<string, string>
  User: string
  ExposedPorts: Record<string, Record<string, never>>
  AttachStdin: false
  AttachStdout: true
  AttachStderr: true
  OpenStdin: false
  Tty: false
  HostConfig: ServiceHostConfig
}

/**
 * A warm service container: the job sandbox (read-only root, no capabilities, limits, non-root) but
 * with a bridge network and its port published on 127.0.0.1 only, never on every interface: a
 * service reachable from outside would bypass the node and its Guardian.
 */
export function buildServiceCreateSpec (opts: { container: ContainerConfig, imageId: string, runtimeId: string, nodeId?: string }): ServiceCreateSpec {
  const { container, imageId, runtimeId } = opts
  if (container.service === undefined) throw new TypeError(`container ${container.id} has no service block`)
  const port = `${container.service.port}/tcp`
  const env: string[] = []
  for (const [key, value] of Object.entries(container.env)) env.push(`${key}=${value}`)
  const spec: ServiceCreateSpec = {
    name: serviceContainerName(container.id, runtimeId),
    Image: imageId,
    Env: env,
    Labels: { [LABEL_SERVICE]: container.id, [LABEL_CONTAINER]: container.id, [LABEL_RUNTIME]: runtimeId, ...ownerLabels(KIND_SERVICE, opts.nodeId) },
    User: container.user,
    ExposedPorts: { [port]: {} },
    // stdout/stderr are attached for a tail that explains a crash; there is no stdin.
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    OpenStdin: false,
    Tty: false,
    HostConfig: {
      ...buildHostConfig(container),
      NetworkMode: 'bridge',
      // HostPort '' lets the engine choose a free port; the runtime reads it back after start.
      PortBindings: { [port]: [{ HostIp: SERVICE_HOST_IP, HostPort: '' }] }
    }
  }
  if (container.command.length > 0) spec.Cmd = [...container.command]
  return spec
}

export function serviceContainerName (containerId: string, runtimeId: string): string {
  return `inframind-svc-${containerId}-${runtimeId}-${randomBytes(3).toString('hex')}`
}
