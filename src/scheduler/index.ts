import { createHash } from 'node:crypto'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import type { Identity } from '../identity/types.ts'
import { decodeReceipt } from '../receipt/index.ts'
import type { Receipt } from '../receipt/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Startable } from '../types.ts'
import { TypedEmitter } from '../events.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { TOPICS, type AssignmentAck, type Heartbeat, type JobResultNotice } from '../protocol/index.ts'
import { openSealed, SEAL_CONTEXTS } from '../seal/index.ts'
import type { Admission } from '../admission/index.ts'
import { validateEnvelope, type Mesh, type MeshMessage, type PeerView } from '../mesh/index.ts'
import type { RemoteExecutor, RemoteJob, RemoteOutput, RemoteProgress, RemoteResult } from '../gateway/types.ts'
import { AssignmentRejectedError, NoWorkerError, RemoteJobTimeoutError, UnreadableResultError } from './errors.ts'
import { coolDown, pickWorker, placeWorker, type WorkerUse } from './pick.ts'
import { verifier } from './verify.ts'
import { sha256 } from '../receipt/index.ts'
import { Reputation, score, type NodeRecord, type ReputationStore } from './reputation.ts'
import { assigner, type AssignmentSent, type GrpcAssign, type HeldInputs } from './assign.ts'
import { HEARTBEATS_STOPPED, watchWorker } from './watch.ts'
import { disputeBook, type DisputeStore } from './disputes.ts'
import { outputDesk } from './output.ts'

export * from './errors.ts'
export { coolDown, pickWorker, placeWorker, type Standing, type WorkerUse } from './pick.ts'
export { WATCH_INTERVAL_MS, DISCONNECT_GRACE_MS } from './watch.ts'
export type { AssignmentSent, GrpcAssign } from './assign.ts'
export { Reputation, score, exclusionMs, EXCLUSION_BASE_MS, SCORE_THRESHOLD, SCORE_MIN_OUTCOMES, DISPUTE_WEIGHT, type NodeRecord, type ReputationStore } from './reputation.ts'

/** How long a worker has to acknowledge an assignment before the next candidate gets it (mesh.ack_timeout_ms). */
const ACK_TIMEOUT_MS = 3_000
/** Candidates tried for one job before giving up (each refusal, silence or lost worker moves to the next). */
const MAX_ATTEMPTS = 3
/**
 * When no worker can take a job, how long the scheduler waits for one to appear (within the job's
 * deadline) before NO_WORKER: a gateway that has just restarted hears its workers' heartbeats only
 * over the next seconds, and its resumed jobs must not fail for that.
 */
const WORKER_WAIT_MS = 20_000
const WORKER_POLL_MS = 250

/** What the scheduler says of a result sent to it point to point. */
export interface ResultVerdict { accepted: boolean, reason: string }

export interface SchedulerEvents {
  /** Every assignment sent, with its path. */
  assigned: AssignmentSent
}

/** The scheduler is the gateway's remote executor: it runs jobs on workers of the mesh. */
export interface Scheduler extends Startable, RemoteExecutor {
  /** Inputs held for workers to fetch by hash: only the worker a job is assigned to gets its input. */
  content(hash: Uint8Array, requester: string): Promise<Uint8Array | undefined>
  /**
   * A worker's signed result notice sent point to point: checked as a gossiped one would be (size,
   * signature, signer = the receipt's worker, freshness, the receipt verifies), then taken only for a
   * job of this scheduler that is waiting for that worker's result.
   */
  acceptResult(envelope: SignedEnvelope): ResultVerdict
  /** A worker's signed chunk of a running job's output (Node.ReportOutput), for that job's live readers (src/scheduler/output.ts). */
  acceptOutput(envelope: SignedEnvelope): ResultVerdict
  on<K extends keyof SchedulerEvents>(name: K, listener: (value: SchedulerEvents[K]) => void): () => void
  /** What this scheduler has recorded of each node it assigned to (persisted). */
  reputation(): Array<NodeRecord & { nodeId: string, score: number }>
}

export interface SchedulerInit {
  /** How assignments go out (mesh.assign_via). */
  assignVia: 'grpc' | 'gossip'
  /** Inputs up to this size ride in the assignment; larger ones are fetched by hash (mesh.inline_bytes). */
  inlineBytes: number
  /** How long a worker has to acknowledge (default ACK_TIMEOUT_MS). */
  ackTimeoutMs?: number
  /** Notices stamped further than this from our clock are refused (mesh.max_clock_skew_ms). */
  maxClockSkewMs: number
}

export interface SchedulerComponents {
  mesh: Mesh
  /** Which workers may get jobs (roster, admission mode). */
  admission: Admission
  identity: Identity
  logger: Logger
  grpc?: GrpcAssign
  /** Where the scheduler registers its metrics (assignments by path). */
  metrics?: Metrics
  /** This node's public gRPC address, where workers report results ('' = not known yet: they gossip). */
  replyAddress?: () => string
  /** Where the reputation of workers and dispute records are kept across restarts (the node's LevelDB store). */
  store?: ReputationStore & DisputeStore
}

/**
 * A first scheduler: picks a capable worker from live heartbeats, sends it a signed assignment (its
 * gRPC AssignJob, or gossip: mesh.assign_via), waits for the ack, fails over, and collects the result notice.
 */
export function scheduler (init: SchedulerInit) {
  return (c: SchedulerComponents): Scheduler => {
    const logger = c.logger.child({ component: 'scheduler' })
    const ackTimeoutMs = init.ackTimeoutMs ?? ACK_TIMEOUT_MS
    const acks = new Map<string, (ack: AssignmentAck) => void>()
    /** Jobs waiting for their result: true when the notice came from the worker the job is with. */
    const results = new Map<string, (msg: MeshMessage<JobResultNotice>, receipt: Receipt) => boolean>()
    /** Re-executions waiting for their validator's result, by `${validation job id}/${validator id}`. */
    const validations = new Map<string, (msg: MeshMessage<JobResultNotice>, receipt: Receipt) => void>()
    /** Large inputs by hash, with the workers allowed to fetch them (those the job was assigned to). */
    const inputs: HeldInputs = new Map()
    /** sha256 of a job's input, once per input buffer: a verified job's input is named again for each validator. */
    const inputHashes = new WeakMap<Uint8Array, Buffer>()
    const inputHashOf = (input: Uint8Array): Buffer => {
      let hash = inputHashes.get(input)
      if (hash === undefined) {
        hash = createHash('sha256').update(input).digest()
        inputHashes.set(input, hash)
      }
      return hash
    }
    // Kept between heartbeats so a burst does not pile onto one worker; only workers seen lately stay.
    const use = new Map<string, WorkerUse>()
    /** Placement key → the workers running its jobs now (how many each): the siblings a reassignment avoids. */
    const placedOn = new Map<string, Map<string, number>>()
    const holdPlacement = (key: string, workerId: string): () => void => {
      const held = placedOn.get(key) ?? new Map<string, number>()
      placedOn.set(key, held)
      held.set(workerId, (held.get(workerId) ?? 0) + 1)
      return () => {
        const n = (held.get(workerId) ?? 1) - 1
        if (n > 0) held.set(workerId, n)
        else held.delete(workerId)
        if (held.size === 0 && placedOn.get(key) === held) placedOn.delete(key)
      }
    }
    const useOf = (workerId: string): WorkerUse => {
      let u = use.get(workerId)
      if (u === undefined) { u = { inFlight: 0, lastAssignedMs: 0, misses: 0, coolUntilMs: 0 }; use.set(workerId, u) }
      return u
    }
    /**
     * One outage is one miss: every job a worker had (and every assignment sent to it) fails within
     * seconds when it dies, and counting each would sit a worker that is back in seconds out for the
     * longest cool-down. A miss during a cool-down does not lengthen it. Returns the cool-down left, ms.
     */
    const missed = (u: WorkerUse): number => {
      const now = Date.now()
      if (u.coolUntilMs <= now) {
        u.misses += 1
        u.coolUntilMs = now + coolDown(u.misses)
      }
      return u.coolUntilMs - now
    }
    const reputation = new Reputation(c.store)
    const events = new TypedEmitter<SchedulerEvents>(logger)
    const sentTotal = c.metrics?.counter({ name: 'inframind_assignments_sent_total', help: 'Assignments this scheduler sent, by path (grpc, gossip, gossip_fallback = gossip after gRPC failed)', labelNames: ['via'] })
    const reassignedTotal = c.metrics?.counter({ name: 'inframind_jobs_reassigned_total', help: 'Mesh jobs taken from a worker lost while running them (heartbeats stopped or connection gone) and assigned again' })
    const verifiedTotal = c.metrics?.counter({ name: 'inframind_verifications_total', help: 'Verified mesh jobs by outcome: certified (the worker\'s output, or after a dispute the output q validators agreed on), incomplete, disputed (its output never returned)', labelNames: ['state'] })
    const attestationsRefusedTotal = c.metrics?.counter({ name: 'inframind_attestations_refused_total', help: 'Attestations a validator returned that did not count (forged, replayed from another receipt, by the worker, by a validator not chosen), by code', labelNames: ['code'] })
    c.metrics?.gauge({
      name: 'inframind_workers_excluded',
      help: 'Workers this scheduler gives no assignments now (a lost dispute or a low score)',
      read: () => reputation.all().filter(([, r]) => r.excludedUntilMs > Date.now()).length
    })
    const lateTotal = c.metrics?.counter({ name: 'inframind_late_results_total', help: 'Results refused because the job was no longer with the worker that sent them (reassigned, or already answered)' })
    const sent = (a: AssignmentSent): void => {
      sentTotal?.inc({ via: a.via })
      events.emit('assigned', a)
    }
    let unsubscribe: Array<() => void> = []
    const output = outputDesk({ identity: c.identity, maxClockSkewMs: init.maxClockSkewMs })

    const livePeers = (): PeerView[] => c.mesh.peers().filter((p) => p.alive && p.heartbeat !== null)
    const liveWorkers = (): Heartbeat[] => livePeers().map((p) => p.heartbeat as Heartbeat)

    const assignOnce = assigner({
      assignVia: init.assignVia, inlineBytes: init.inlineBytes, ackTimeoutMs, identity: c.identity, mesh: c.mesh, logger,
      grpc: c.grpc, replyAddress: c.replyAddress, inputs, acks, sent
    })
    const watch = (workerId: string): ReturnType<typeof watchWorker> => watchWorker(c.mesh, workerId)

    /** Why each node that serves the job's containers was not picked (for the error a client sees). */
    const passedOver = (job: RemoteJob, tried: ReadonlySet<string>, now: number): string[] => c.mesh.peers()
      .filter((p) => p.heartbeat !== null && job.containers.every((id) => p.containers.includes(id)))
      .map((p) => {
        const standing = c.admission.standing(p.nodeId)
        const ban = c.mesh.banned().find((b) => b.nodeId === p.nodeId)
        const why = ban !== undefined
          ? `banned (${ban.reason})`
          : !p.alive
          ? `silent for ${Math.round((now - p.lastSeenMs) / 1000)} s`
          : standing === 'refused'
            ? 'not a worker in the roster'
            : standing === 'probation' && !job.allowProbation
              ? 'on probation (the job does not allow it)'
              : reputation.excluded(p.nodeId, now)
                ? `excluded ${Math.round((reputation.get(p.nodeId).excludedUntilMs - now) / 60_000)} min more (${reputation.get(p.nodeId).disputesLost} dispute(s) lost, score ${reputation.score(p.nodeId).toFixed(2)})`
              : (use.get(p.nodeId)?.coolUntilMs ?? 0) > now
                  ? `cooling down ${Math.round(((use.get(p.nodeId)?.coolUntilMs ?? 0) - now) / 1000)} s after missed acks`
                  : tried.has(p.nodeId) ? 'already tried' : 'not a worker'
        return `${p.nodeId.slice(-8)} ${why}`
      })

    /** A result's output: opened from the notice (sealed to this scheduler) or fetched from its worker by hash. */
    const outputOf = async (jobId: string, workerId: string, notice: JobResultNotice, receipt: Receipt, signal: AbortSignal): Promise<Uint8Array> => {
      if (!notice.outputInline) return await c.mesh.fetch(workerId, receipt.outputHash, signal)
      try {
        return openSealed(c.identity, notice.sealedOutput, SEAL_CONTEXTS.output(jobId))
      } catch (err) {
        throw new UnreadableResultError(jobId, workerId, err)
      }
    }

    const runRemote = async (job: RemoteJob, opts: { signal: AbortSignal, onProgress?: (p: RemoteProgress) => void, onOutput?: (chunk: RemoteOutput) => void }): Promise<RemoteResult> => {
      const tried = new Set<string>()
      const refusals: string[] = []
      // Hashed once per job, not per attempt: large inputs are served by this hash until the job ends.
      const inputHash = inputHashOf(job.input)
      const inputKey = inputHash.toString('hex')
      if (job.input.byteLength > init.inlineBytes) {
        // Counted per job: two jobs with the same input share one entry, released when both end.
        const held = inputs.get(inputKey) ?? { bytes: job.input, workers: new Set<string>(), jobs: 0 }
        held.jobs += 1
        inputs.set(inputKey, held)
      }
      // Registered before any assignment goes out, so a fast worker's result is never missed.
      let resultFrom = ''
      const result = new Promise<{ msg: MeshMessage<JobResultNotice>, receipt: Receipt }>((resolve, reject) => {
        results.set(job.jobId, (msg, receipt) => {
          if (msg.from !== resultFrom) return false
          resolve({ msg, receipt })
          return true
        })
        opts.signal.addEventListener('abort', () => reject(new RemoteJobTimeoutError(job.jobId, resultFrom)), { once: true })
      })
      result.catch(() => {})
      // Chunks are heard from the worker the result is awaited from, from before its assignment goes out.
      const closeOutput = opts.onOutput !== undefined ? output.open(job.jobId, () => resultFrom, opts.onOutput) : () => {}
      const waitingSince = Date.now()
      /** When the last worker was lost mid-job or did not ack (0 = none yet). */
      let lostAtMs = 0
      try {
        for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
          const now = Date.now()
          const peers = livePeers()
          // Only workers the admission mode allows; a worker on probation only when the client asked.
          const live = peers.map((p) => p.heartbeat as Heartbeat).filter((h) => {
            const standing = c.admission.standing(h.nodeId)
            return (standing === 'rostered' || (standing === 'probation' && job.allowProbation)) && !reputation.excluded(h.nodeId, now)
          })
          for (const [id, u] of use) if (u.inFlight === 0 && u.coolUntilMs <= now && !live.some((h) => h.nodeId === id)) use.delete(id)
          // The worker that had the job before a restart is asked first: it may hold the result.
          const previous = attempt === 0 && job.previousWorker !== undefined ? live.find((h) => h.nodeId === job.previousWorker) : undefined
          // A placed job (client idempotency key, subscription slot) asks the same worker any gateway would.
          const placed = attempt === 0 && previous === undefined && job.placement !== undefined
            ? placeWorker(live, job.containers, new Set(job.excludeWorkers ?? []), job.placement)
            : undefined
          // Never a worker running a sibling of a placed job (another response of the same subscription
          // interval): its second answer would not count.
          const siblings = job.placement !== undefined ? [...(placedOn.get(job.placement.key)?.keys() ?? [])] : []
          const worker = previous ?? placed ?? pickWorker(live, job.containers, new Set([...tried, ...(job.excludeWorkers ?? []), ...siblings]), use, now, (id) => reputation.standing(id))
          if (worker === undefined) {
            // After a worker was lost or stayed silent, the others may be out of sight for a moment
            // too (a busy machine delays heartbeats): wait for one as at the start, never fail at once.
            const waitFrom = lostAtMs > 0 ? lostAtMs : waitingSince
            if (refusals.length > 0 && lostAtMs === 0) break
            if (Date.now() - waitFrom < WORKER_WAIT_MS) {
              await new Promise((resolve) => setTimeout(resolve, WORKER_POLL_MS))
              if (opts.signal.aborted) throw new RemoteJobTimeoutError(job.jobId, '')
              attempt -= 1
              continue
            }
            if (refusals.length > 0) break
            throw new NoWorkerError(job.containers, passedOver(job, tried, now))
          }
          useOf(worker.nodeId).lastAssignedMs = Date.now()
          tried.add(worker.nodeId)
          opts.onProgress?.({ state: 'assigned', detail: `assigned to ${worker.nodeId}` })
          resultFrom = worker.nodeId
          let ack: AssignmentAck
          const sentAt = Date.now()
          try {
            ack = await assignOnce(job, inputHash, worker, peers.find((p) => p.nodeId === worker.nodeId)?.addresses ?? [], opts.signal)
          } catch (err) {
            if (opts.signal.aborted) throw new RemoteJobTimeoutError(job.jobId, worker.nodeId)
            // Silence (or an unreadable answer) is not picked again for a while, longer each time.
            const coolDownMs = missed(useOf(worker.nodeId))
            lostAtMs = Date.now()
            reputation.record(worker.nodeId, 'timeout')
            refusals.push(`${worker.nodeId}: ${(err as Error).message}`)
            logger.info({ job: job.jobId, worker: worker.nodeId, err: (err as Error).message, coolDownMs }, 'no ack; trying another worker')
            continue
          }
          useOf(worker.nodeId).misses = 0
          if (!ack.accepted) {
            reputation.record(worker.nodeId, 'refusal', { ackLatencyMs: Date.now() - sentAt })
            refusals.push(`${worker.nodeId}: ${ack.code} ${ack.reason}`)
            logger.info({ job: job.jobId, worker: worker.nodeId, code: ack.code }, 'assignment refused; trying another worker')
            continue
          }
          const ackLatency = Date.now() - sentAt
          opts.onProgress?.({ state: 'accepted', detail: `accepted by ${worker.nodeId}${ack.duplicate ? ' (it already had the job)' : ''}`, workerId: worker.nodeId })
          const running = useOf(worker.nodeId)
          running.inFlight += 1
          const sibling = job.placement !== undefined ? holdPlacement(job.placement.key, worker.nodeId) : () => {}
          const watching = watch(worker.nodeId)
          try {
            const outcome = await Promise.race([result, watching.lost])
            if ('lost' in outcome) {
              // The job goes to another worker; a result the lost one sends later is refused (not its job any more).
              resultFrom = ''
              lostAtMs = Date.now()
              // Silent but maybe only slow (a busy machine delays heartbeats): once heard again it may
              // be asked again, and a worker that still runs the job acknowledges it as a duplicate.
              if (outcome.lost === HEARTBEATS_STOPPED) tried.delete(worker.nodeId)
              missed(running)
              reputation.record(worker.nodeId, 'timeout')
              refusals.push(`${worker.nodeId}: lost while running the job (${outcome.lost})`)
              reassignedTotal?.inc()
              logger.warn({ job: job.jobId, worker: worker.nodeId, reason: outcome.lost }, 'worker lost mid-job; reassigning')
              opts.onProgress?.({ state: 'assigned', detail: `worker ${worker.nodeId} lost (${outcome.lost}); reassigning` })
              continue
            }
            const { msg, receipt } = outcome
            reputation.record(worker.nodeId, receipt.status === 'success' ? 'success' : 'failure', { ackLatencyMs: ackLatency })
            const notice = msg.value
            return {
              output: await outputOf(job.jobId, worker.nodeId, notice, receipt, opts.signal),
              receipt: notice.receipt as SignedEnvelope,
              decoded: receipt,
              workerId: msg.from,
              probation: c.admission.standing(msg.from) !== 'rostered'
            }
          } finally {
            watching.stop()
            running.inFlight -= 1
            sibling()
          }
        }
      } finally {
        results.delete(job.jobId)
        closeOutput()
        const held = inputs.get(inputKey)
        if (held !== undefined && --held.jobs <= 0) inputs.delete(inputKey)
      }
      if (refusals.length > 0) throw new AssignmentRejectedError(job.jobId, refusals)
      throw new NoWorkerError(job.containers)
    }

    const disputes = disputeBook({ identity: c.identity, admission: c.admission, mesh: c.mesh, logger, reputation, store: c.store, metrics: c.metrics })

    /** A validator's re-execution result, to the check waiting for it; false when none waits (or it is not one). */
    const deliverValidation = (msg: MeshMessage<JobResultNotice>, receipt: Receipt): boolean => {
      const waiting = validations.get(`${receipt.jobId}/${msg.from}`)
      if (waiting === undefined) return false
      waiting(msg, receipt)
      return true
    }

    const verification = verifier({
      identity: c.identity,
      logger,
      admission: c.admission,
      livePeers,
      inputHash: (job) => inputHashOf(job.input),
      holdInput: (job, validatorIds) => {
        if (job.input.byteLength <= init.inlineBytes) return () => {}
        const key = inputHashOf(job.input).toString('hex')
        const held = inputs.get(key) ?? { bytes: job.input, workers: new Set<string>(), jobs: 0 }
        held.jobs += 1
        for (const id of validatorIds) held.workers.add(id)
        inputs.set(key, held)
        return () => { if (--held.jobs <= 0) inputs.delete(key) }
      },
      allowFetch: (job, validatorId) => {
        const held = inputs.get(inputHashOf(job.input).toString('hex'))
        held?.workers.add(validatorId)
      },
      assign: async (job, validator, signal, checkedReceipt, purpose) => {
        const inputHash = inputHashOf(job.input)
        const addresses = c.mesh.peers().find((p) => p.nodeId === validator.nodeId)?.addresses ?? []
        return await assignOnce(job, inputHash, validator, addresses, signal, { purpose, checkedReceipt })
      },
      outputOf,
      awaitResult: (validationId, validatorId) => {
        const key = `${validationId}/${validatorId}`
        let cancel = (): void => {}
        const result = new Promise<{ msg: MeshMessage<JobResultNotice>, receipt: Receipt }>((resolve) => {
          validations.set(key, (msg, receipt) => resolve({ msg, receipt }))
          cancel = () => { validations.delete(key) }
        })
        return { result, cancel }
      },
      watch,
      refused: (code) => attestationsRefusedTotal?.inc({ code })
    })

    /** A result for a job this scheduler no longer waits for from that worker: recorded, never delivered. */
    const late = (jobId: string, workerId: string): void => {
      lateTotal?.inc()
      logger.info({ job: jobId, worker: workerId }, 'late result ignored: the job is no longer with this worker (reassigned or answered)')
    }

    /** A worker's result notice sent point to point (Node.ReportResult): the same checks as on gossip. */
    const acceptResult = (envelope: SignedEnvelope): ResultVerdict => {
      let signer: string
      try {
        signer = nodeIdFromPublicKey(envelope.publicKey)
      } catch (err) {
        return { accepted: false, reason: `not a valid signer key: ${(err as Error).message}` }
      }
      // Already decoded and size-limited by gRPC: the gossip rule's checks on the envelope as it is.
      const verdict = validateEnvelope('receipts', envelope, signer, {
        now: Date.now(),
        maxBytes: Number.POSITIVE_INFINITY,
        maxSkewMs: init.maxClockSkewMs,
        lastHeartbeatAt: () => undefined
      })
      if (verdict.action !== 'ACCEPT') return { accepted: false, reason: `${verdict.code}: ${verdict.reason}` }
      const receipt = decodeReceipt((verdict.value.receipt as SignedEnvelope).payload)
      if (receipt.schedulerId !== c.identity.nodeId) return { accepted: false, reason: `job ${receipt.jobId} was assigned by ${receipt.schedulerId}, not by this scheduler` }
      const msg0: MeshMessage<JobResultNotice> = { topic: TOPICS.receipts, value: verdict.value, envelope: verdict.envelope, from: verdict.signer }
      if (deliverValidation(msg0, receipt)) return { accepted: true, reason: '' }
      const waiting = results.get(receipt.jobId)
      if (waiting === undefined) {
        late(receipt.jobId, signer)
        return { accepted: false, reason: `no job ${receipt.jobId} of this scheduler is waiting for a result` }
      }
      const msg: MeshMessage<JobResultNotice> = { topic: TOPICS.receipts, value: verdict.value, envelope: verdict.envelope, from: verdict.signer }
      if (!waiting(msg, receipt)) {
        late(receipt.jobId, signer)
        return { accepted: false, reason: `job ${receipt.jobId} is not assigned to ${signer}` }
      }
      return { accepted: true, reason: '' }
    }

    return {
      acceptResult,
      acceptOutput: (envelope) => output.accept(envelope),
      // What rostered workers serve (workers on probation serve only jobs that ask for them).
      servedContainers: (opts = {}) => new Set(liveWorkers().filter((h) => {
        const standing = c.admission.standing(h.nodeId)
        return h.roles.includes('worker') && (standing === 'rostered' || (standing === 'probation' && opts.allowProbation === true))
      }).flatMap((h) => h.containers)),
      runRemote,
      verify: async (job, r, policy, opts) => {
        const outcome = await verification.verify(job, r, policy, opts)
        const resolved = outcome.state === 'certified' ? outcome.resolved : undefined
        verifiedTotal?.inc({ state: outcome.state })
        if (outcome.state === 'disputed') disputes.lost(job.jobId, r.receipt, r.workerId, policy, outcome, new Uint8Array())
        if (resolved !== undefined) disputes.lost(job.jobId, r.receipt, r.workerId, policy, resolved.dispute, sha256(resolved.output))
        return outcome
      },
      early: (job, workerId, policy, excludeValidators) => { verification.early(job, workerId, policy, excludeValidators) },
      misbehaved: (workerId, reason) => {
        const rec = reputation.record(workerId, 'dispute', { retractSuccess: true })
        logger.warn({ worker: workerId, reason, excludedUntil: new Date(rec.excludedUntilMs).toISOString() }, 'worker\'s own receipt contradicts the job: excluded from assignments')
      },
      reputation: () => reputation.all().map(([nodeId, r]) => ({ nodeId, score: score(r), ...r })),
      content: async (hash, requester) => {
        const held = inputs.get(Buffer.from(hash).toString('hex'))
        return held !== undefined && held.workers.has(requester) ? held.bytes : undefined
      },
      on: (name, listener) => events.on(name, listener),
      async start () {
        if (unsubscribe.length > 0) return
        await reputation.load()
        unsubscribe = [
          c.mesh.subscribe('disputes', (msg) => { disputes.heard(msg) }),
          c.mesh.subscribe('acks', (msg) => {
            if (msg.value.schedulerId !== c.identity.nodeId) return
            acks.get(`${msg.value.jobId}/${msg.from}`)?.(msg.value)
          }),
          c.mesh.subscribe('receipts', (msg) => {
            // The mesh validator already verified the receipt and that the worker signed it.
            const receipt = decodeReceipt((msg.value.receipt as SignedEnvelope).payload)
            if (receipt.schedulerId !== c.identity.nodeId) return
            if (deliverValidation(msg, receipt)) return
            const waiting = results.get(receipt.jobId)
            if (waiting === undefined || !waiting(msg, receipt)) late(receipt.jobId, msg.from)
          })
        ]
      },
      async stop () {
        for (const u of unsubscribe) u()
        unsubscribe = []
        await reputation.flushed()
      }
    }
  }
}
