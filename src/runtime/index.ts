/** The container runtime: one-shot job containers and warm service containers, sandboxed (docs/CONTAINERS.md). */
export { dockerRuntime, resolveEngine } from './docker.ts'
export type { DockerRuntimeInit, DockerRuntimeComponents } from './docker.ts'
export { buildHostConfig, buildCreateSpec, buildServiceCreateSpec, assertSafeUser, containerName, ownerLabels, SERVICE_HOST_IP } from './sandbox.ts'
export { reapLeftovers } from './reap.ts'
export type { ReapOptions, ReapResult } from './reap.ts'
export type { SandboxHostConfig, CreateSpec, ServiceCreateSpec, ServiceHostConfig } from './sandbox.ts'
export { LocalImageResolver } from './images.ts'
export { encodeServiceRequest, decodeOutput } from './service-call.ts'
export { detectHardware, detectGpus, parseNvidiaSmi } from './hardware.ts'
export type { HardwareInfo, GpuInfo, DetectHardwareOptions } from './hardware.ts'
export { StreamDemuxer, CappedBuffer, TailBuffer } from './streams.ts'
export { schemaViolation, valueViolation, IO_SCHEMAS } from './schema.ts'
export * from './errors.ts'
export * from './constants.ts'
export type {
  Runtime, RuntimeStats, RunRequest, RunResult, ImageStatus, JobOrigin, ContainerState, ContainerStatus, ContainerEvent, ImageResolver, ImageProgress
} from './types.ts'
