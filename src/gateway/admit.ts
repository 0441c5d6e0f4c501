import { GpuUnavailableError } from '../runtime/errors.ts'
import { schemaViolation } from '../runtime/schema.ts'
import { MAX_CHAIN_LENGTH, MAX_DEADLINE_MS } from './constants.ts'
import { CONTAINER_ID_PATTERN, JOB_ID_PATTERN } from './ids.ts'
import {
  InputTooLargeError, InsufficientResourcesError, InvalidChainError, InvalidContainerIdError, InvalidDeadlineError, InvalidInputError,
  InvalidJobIdError
} from './errors.ts'
import { quote } from '../quote.ts'
import type { ContainerConfig } from '../config/types.ts'
import type { Guardian } from '../guardian/index.ts'
import type { JobOrigin } from '../runtime/types.ts'
import type { HardwareProfile, SubmitRequest } from './types.ts'
import { InvalidPolicyError, NO_VERIFICATION, NonDeterministicError, resolvePolicy, type PolicyLimits, type ResolvedPolicy } from '../verification/index.ts'

export interface ValidSubmit {
  /** The chain, resolved to configs, in order. */
  containers: ContainerConfig[]
  /** undefined when the client gave none (a fresh id is generated). */
  jobId: string | undefined
  deadlineMs: number
  origin: JobOrigin
  requiresProof: boolean
  allowProbation: boolean
  /** The resolved policy (method "none" = unverified). */
  verification: ResolvedPolicy
}

export interface SubmitRules {
  containers: ReadonlyMap<string, ContainerConfig>
  guardian: Guardian
  /** This machine, for a job that runs here; undefined for a mesh job (the worker checks its own). */
  hardware: HardwareProfile | undefined
  defaultDeadlineMs: number
  /** gateway.verification; without it every job is unverified and asking for more is refused. */
  verification?: PolicyLimits
}

/**
 * Checks a submission before anything is stored; throws the error that tells the client what to fix.
 * Order: job id, chain shape, Guardian (who may run what), hardware (could it ever run here), then
 * the input against the first container and the deadline.
 */
export function validateSubmit (req: SubmitRequest, rules: SubmitRules): ValidSubmit {
  // '' is how proto3 spells "not set", so it means "generate one", not an invalid id.
  const jobId = req.jobId === undefined || req.jobId === '' ? undefined : req.jobId
  if (jobId !== undefined) checkJobId(jobId)
  const ids = chainOf(req)
  const origin = originOf(req.origin)
  const requiresProof = req.requiresProof === true
  rules.guardian.check({ containers: ids, origin: guardedOrigin(req, origin), requiresProof, delegateVerified: req.delegateVerified === true })
  // The Guardian has refused unknown ids, so every lookup succeeds.
  const containers = ids.map((id) => rules.containers.get(id) as ContainerConfig)
  const hardware = rules.hardware
  if (hardware !== undefined) for (const c of containers) checkResources(c, hardware)
  const first = containers[0] as ContainerConfig
  if (!(req.input instanceof Uint8Array)) {
    throw new InvalidInputError(first.id, 'input must be bytes (Uint8Array)')
  }
  if (req.input.byteLength > first.maxInputBytes) {
    throw new InputTooLargeError(first.id, req.input.byteLength, first.maxInputBytes)
  }
  const reason = schemaViolation(first.inputSchema, req.input)
  if (reason !== undefined) throw new InvalidInputError(first.id, reason)
  const verification = verificationOf(req, containers, rules)
  return { containers, jobId, deadlineMs: checkDeadline(req.deadlineMs, rules.defaultDeadlineMs), origin, requiresProof, allowProbation: req.allowProbation === true, verification }
}

/**
 * The policy a job runs under: the gateway's defaults filled in, and re-execution only of containers
 * that declare themselves deterministic (refused, never silently downgraded). A scheduler's
 * assignment carries no policy: verifying is the scheduler's business, not the worker's.
 */
function verificationOf (req: SubmitRequest, containers: ContainerConfig[], rules: SubmitRules): ResolvedPolicy {
  if (typeof req.schedulerId === 'string' && req.schedulerId !== '') return NO_VERIFICATION
  const limits = rules.verification ?? { defaultMethod: 'none', defaultValidators: 1, maxValidators: 0 }
  const asked = req.verification ?? null
  if (rules.verification === undefined && asked !== null && asked.method !== '' && asked.method !== 'none') {
    throw new InvalidPolicyError('this node does not verify results (it has no mesh); ask for verification "none"')
  }
  const policy = resolvePolicy(asked, limits)
  if (policy.method === 'reexecute') {
    const nondeterministic = containers.filter((c) => !c.deterministic).map((c) => c.id)
    if (nondeterministic.length > 0) throw new NonDeterministicError(nondeterministic)
  }
  return policy
}

/** The chain a request names: `containers`, or `[containerId]`; [] when neither (the Guardian refuses it). */
export function chainOf (req: Pick<SubmitRequest, 'containerId' | 'containers'>): string[] {
  const one = typeof req.containerId === 'string' ? req.containerId : ''
  const list = Array.isArray(req.containers) ? req.containers : []
  if (list.some((id) => typeof id !== 'string' || id === '')) {
    throw new InvalidChainError('containers must be non-empty container ids')
  }
  if (list.length > MAX_CHAIN_LENGTH) {
    throw new InvalidChainError(`a job may chain at most ${MAX_CHAIN_LENGTH} containers, got ${list.length}`)
  }
  // Before any lookup: an id no config could hold is the client's mistake, and the Guardian's
  // NOT_FOUND would echo it.
  if (one !== '') checkContainerId(one)
  for (const id of list) checkContainerId(id)
  if (list.length === 0) return one === '' ? [] : [one]
  if (one !== '' && one !== list[0]) {
    throw new InvalidChainError(`container_id ${quote(one)} and containers[0] ${quote(list[0])} disagree: give one of them (or container_id equal to containers[0])`)
  }
  return [...list]
}

/** `id` when it follows the job id rule (ids.ts); InvalidJobIdError otherwise. */
export function checkJobId (id: unknown): string {
  if (typeof id !== 'string' || !JOB_ID_PATTERN.test(id)) throw new InvalidJobIdError(String(id))
  return id
}

/** `id` when it follows the container id rule (ids.ts); InvalidContainerIdError otherwise. */
export function checkContainerId (id: unknown): string {
  if (typeof id !== 'string' || !CONTAINER_ID_PATTERN.test(id)) throw new InvalidContainerIdError(String(id))
  return id
}

/** A container that needs more than the whole node has would only fail later, so it is refused now. */
export function checkResources (c: ContainerConfig, hw: HardwareProfile): void {
  if (c.resources.cpus > hw.cpuCores) throw new InsufficientResourcesError(c.id, 'cpus', c.resources.cpus, hw.cpuCores)
  if (c.resources.memoryBytes > hw.memoryBytes) throw new InsufficientResourcesError(c.id, 'memory', c.resources.memoryBytes, hw.memoryBytes)
  if (c.resources.gpu && hw.gpus.length === 0) throw new GpuUnavailableError(c.id)
}

/**
 * Whom the Guardian judges. A client's job: the client (address, delegate). A scheduler's assignment:
 * that scheduler (allowed_peers), since the gateway that admitted the job already judged the client
 * by its own rules, and this node can verify the scheduler's signature but not the client's address.
 */
function guardedOrigin (req: SubmitRequest, origin: JobOrigin): JobOrigin {
  const scheduler = typeof req.schedulerId === 'string' ? req.schedulerId : ''
  return scheduler === '' ? origin : { ip: '', peerId: scheduler, delegate: '' }
}

function originOf (origin: JobOrigin | undefined): JobOrigin {
  const text = (v: unknown): string => typeof v === 'string' ? v : ''
  return { ip: text(origin?.ip), peerId: text(origin?.peerId), delegate: text(origin?.delegate) }
}

export function checkDeadline (deadlineMs: number | undefined, defaultDeadlineMs: number): number {
  if (deadlineMs === undefined || deadlineMs === 0) return defaultDeadlineMs
  if (typeof deadlineMs !== 'number' || !Number.isFinite(deadlineMs) || deadlineMs < 0 || deadlineMs > MAX_DEADLINE_MS) {
    throw new InvalidDeadlineError(Number(deadlineMs), MAX_DEADLINE_MS)
  }
  return deadlineMs
}
