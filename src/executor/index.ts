import type { ContainerConfig } from '../config/types.ts'
import type { Runtime } from '../runtime/types.ts'
import type { JobRecord } from '../store/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Startable } from '../types.ts'
import { Slots } from '../slots.ts'
import { chainConfigs, runChain, type ChainEnd } from './chain.ts'
import { DEFAULT_ABORT_GRACE_MS } from './constants.ts'
import { ExecutorStoppedError } from './errors.ts'
import { STOP_REASON } from './outcome.ts'

export { DEFAULT_ABORT_GRACE_MS, FAILURE_CODES, NO_EXIT_CODE } from './constants.ts'
export { DEADLINE_REASON, STOP_REASON } from './outcome.ts'
export { toFinished, toRequeued, toRunning, withStep, type Ending } from './transitions.ts'
export { ExecutorStoppedError } from './errors.ts'
export type { ChainEnd } from './chain.ts'

export interface ExecutorInit {
  /** Chains running at the same time (jobs.concurrency); further runs wait in line for a slot. */
  concurrency: number
  /** The containers this node runs (none on a gateway without the worker role). */
  containers: ContainerConfig[]
  /** How long a run may take to settle after an abort before its slot is freed (default DEFAULT_ABORT_GRACE_MS). */
  abortGraceMs?: number
}

export interface ExecutorComponents {
  runtime: Runtime
  logger: Logger
}

export interface RunOptions {
  /**
   * Aborted with DEADLINE_REASON (the job's deadline, covering the wait for a slot and every step)
   * or STOP_REASON (the node is stopping).
   */
  signal: AbortSignal
  /** Persists and announces the record as each step begins; resolves once it is stored. */
  update: (job: JobRecord) => Promise<void>
  /** The job's output (its last step's) as it is produced; see RunRequest.onOutput. */
  onOutput?: (chunk: Uint8Array) => void
}

export interface ExecutorStats {
  /** Chains running now. */
  active: number
  /** Runs waiting in line for a slot. */
  waiting: number
  concurrency: number
}

/**
 * The chain runner over the runtime, with the node's concurrency limit. It knows nothing of
 * admission, durability or receipts: the jobs service (gateway), and later a validator's
 * re-execution, call it with a job that is already accepted.
 */
export interface Executor extends Startable {
  /** Whether every container of the chain is configured here. */
  serves(containers: readonly string[]): boolean
  /**
   * Waits for a slot (first come, first served), then runs the job's containers in order from its
   * first unfinished step. Ends `expired` when the deadline passed while waiting, `stopped` when the
   * node stopped it; never throws for a job's own failure (that is a `finished` ending).
   */
  run(job: JobRecord, opts: RunOptions): Promise<ChainEnd>
  stats(): ExecutorStats
}

export function executor (init: ExecutorInit): (components: ExecutorComponents) => Executor {
  return (components) => new ChainExecutor(init, components)
}

class ChainExecutor implements Executor {
  readonly #containers: ReadonlyMap<string, ContainerConfig>
  readonly #slots: Slots
  readonly #abortGraceMs: number
  readonly #runtime: Runtime
  readonly #log: Logger
  #started = false

  constructor (init: ExecutorInit, components: ExecutorComponents) {
    this.#containers = new Map(init.containers.map((c) => [c.id, c]))
    this.#slots = new Slots(init.concurrency)
    this.#abortGraceMs = init.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS
    this.#runtime = components.runtime
    this.#log = components.logger.child({ component: 'executor' })
  }

  async start (): Promise<void> {
    this.#started = true
  }

  async stop (): Promise<void> {
    // Runs in flight belong to their callers, who abort them (the jobs service does on its stop).
    this.#started = false
  }

  serves (containers: readonly string[]): boolean {
    return containers.length > 0 && containers.every((id) => this.#containers.has(id))
  }

  stats (): ExecutorStats {
    return { active: this.#slots.active, waiting: this.#slots.waiting, concurrency: this.#slots.limit }
  }

  async run (job: JobRecord, opts: RunOptions): Promise<ChainEnd> {
    if (!this.#started) throw new ExecutorStoppedError()
    const containers = chainConfigs(job, this.#containers)
    if (!Array.isArray(containers)) return { kind: 'finished', job, end: containers }
    let release: () => void
    try {
      release = await this.#slots.acquire(opts.signal)
    } catch {
      return opts.signal.reason === STOP_REASON ? { kind: 'stopped', job } : { kind: 'expired', job }
    }
    try {
      const ended = await runChain(job, containers, {
        runtime: this.#runtime,
        signal: opts.signal,
        abortGraceMs: this.#abortGraceMs,
        update: opts.update,
        onOutput: opts.onOutput
      })
      if (ended.kind === 'finished' && ended.internal !== undefined) {
        this.#log.warn({ err: ended.internal.error, jobId: job.id }, 'runtime failed without an error code')
      }
      return ended
    } finally {
      release()
    }
  }
}
