/**
 * Coordination between the mesh's schedulers, so no one of them is a single point of failure:
 *
 * - **Ownership.** Each subscription is owned by one live scheduler: the first in rendezvous order
 *   of its id over the live schedulers (the roster's schedulers whose heartbeats this node hears,
 *   itself included). Every scheduler computes the same owner from the same view; when the owner
 *   dies its heartbeats stop, and the next in order takes over.
 * - **Replication.** Subscription events (created, cancelled, each accepted response), each signed
 *   by the scheduler that recorded it, are kept in a record log (`subscription-events`) and pushed
 *   to every other live scheduler before a response is shown to anyone; every
 *   COORDINATION_SYNC_INTERVAL_MS each scheduler also catches up from the others
 *   (/inframind/subscription-sync/1.0.0), so one that was down or cut off gets what it missed.
 *   A new event is handed to `apply` (the subscriptions component), which applies the SDK's rules.
 */
import { decodeEnvelope, encodeEnvelope, verifyEnvelope } from '../envelope/index.ts'
import type { SignedEnvelope } from '../envelope/types.ts'
import { nodeIdFromPublicKey } from '../identity/index.ts'
import type { Identity } from '../identity/types.ts'
import type { Mesh } from '../mesh/index.ts'
import { PAYLOAD_TYPES, SUBSCRIPTION_SYNC_PROTOCOL } from '../protocol/index.ts'
import { InvalidRecordError, recordLog, recordSync, type LoggedRecord, type RecordInput, type RecordLog, type RecordSync } from '../records/index.ts'
import { rendezvousOrder } from '../rendezvous.ts'
import type { JobStore } from '../store/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { Startable } from '../types.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { COORDINATION_SYNC_INTERVAL_MS, DISCONNECTED_GRACE_MS, LIVE_VIEW_MS, MAX_OWNER_MEMO, MAX_REPLICATE_BATCH, MAX_REPLICATE_BATCH_BYTES, REPLICATE_TIMEOUT_MS, SUBSCRIPTION_EVENT_KIND, SUBSCRIPTION_EVENTS_LOG } from './constants.ts'

export * from './constants.ts'

export interface CoordinationInit {
  /** How often every other live scheduler is caught up from (default COORDINATION_SYNC_INTERVAL_MS). */
  syncIntervalMs?: number
  /** How long replicate() waits for the other schedulers (default REPLICATE_TIMEOUT_MS). */
  replicateTimeoutMs?: number
}

export interface CoordinationComponents {
  mesh: Mesh
  identity: Identity
  store: Pick<JobStore, 'section'>
  logger: Logger
  metrics?: Metrics
  /** The roster's schedulers (node ids): the only nodes whose events are kept and who may sync. */
  schedulers: () => readonly string[]
  /** Hands a verified event recorded by another scheduler to the subscriptions component. */
  apply: (envelope: SignedEnvelope) => Promise<void>
}

export interface Coordination extends Startable {
  /** Live schedulers (this node included when it is one), in node id order. */
  live(): string[]
  /** The live scheduler that owns `key` (a subscription id); undefined when none is live. */
  ownerOf(key: string): string | undefined
  owns(key: string): boolean
  /**
   * Keeps a signed event and sends it to every other live scheduler, together with the events
   * recorded in the same turn of the event loop; resolves with how many kept that whole batch
   * (0 when none is live or none answered within the timeout: the periodic catch-up retries).
   */
  replicate(envelope: SignedEnvelope): Promise<number>
}

export function coordination (init: CoordinationInit = {}) {
  return (c: CoordinationComponents): Coordination => {
    const logger = c.logger.child({ component: 'coordination' })
    const self = c.identity.nodeId
    const isScheduler = (id: string): boolean => c.schedulers().includes(id)
    const verify = (kind: string, data: Uint8Array): { jobId: string, nodeIds: string[] } => {
      if (kind !== SUBSCRIPTION_EVENT_KIND) throw new InvalidRecordError(kind, 'UNKNOWN_KIND', `a scheduler keeps only ${SUBSCRIPTION_EVENT_KIND} records, not "${kind.slice(0, 32)}"`)
      let env: SignedEnvelope
      try {
        env = decodeEnvelope(data)
        verifyEnvelope(env, { payloadType: PAYLOAD_TYPES.subscriptionEvent })
      } catch (err) {
        throw new InvalidRecordError(kind, 'INVALID_SIGNATURE', `not a valid signed subscription event: ${(err as Error).message}`)
      }
      const signer = nodeIdFromPublicKey(env.publicKey)
      if (!isScheduler(signer)) throw new InvalidRecordError(kind, 'UNKNOWN_SIGNER', `signed by ${signer}, which is not a scheduler in the roster`)
      return { jobId: '', nodeIds: [signer] }
    }
    const log: RecordLog = recordLog({ name: SUBSCRIPTION_EVENTS_LOG, verify })({ store: c.store, logger, metrics: c.metrics })
    const sync: RecordSync = recordSync({ protocol: SUBSCRIPTION_SYNC_PROTOCOL })({ mesh: c.mesh, log, logger, metrics: c.metrics, authorize: isScheduler })
    let timer: ReturnType<typeof setInterval> | undefined
    let syncing = false
    let offStored = (): void => {}
    let applying: Promise<void> = Promise.resolve()

    // A scheduler is live while its heartbeats arrive and this node is connected to it (the mesh keeps
    // connections to every scheduler): a killed process's sockets close at once, so its subscriptions
    // move after DISCONNECTED_GRACE_MS instead of after several missed heartbeats.
    const connectedAt = new Map<string, number>()
    const connected = (id: string, now: number): boolean => {
      let open = false
      try {
        open = c.mesh.libp2p().getConnections(peerIdFromString(id)).length > 0
      } catch {}
      if (open) connectedAt.set(id, now)
      return open || now - (connectedAt.get(id) ?? 0) < DISCONNECTED_GRACE_MS
    }
    // The runner asks who owns each subscription several times a second: the live view is computed
    // at most once per LIVE_VIEW_MS, and each key's owner once per distinct view.
    let view = { atMs: -Infinity, ids: [] as string[], key: '' }
    const live = (): string[] => {
      const now = Date.now()
      if (now - view.atMs < LIVE_VIEW_MS) return view.ids
      const ids = c.schedulers().filter((id) => id === self || (c.mesh.livePeer(id) !== null && connected(id, now))).sort()
      view = { atMs: now, ids, key: ids.join(',') }
      return ids
    }
    const others = (): string[] => live().filter((id) => id !== self)
    const owners = new Map<string, { view: string, owner: string | undefined }>()
    const ownerOf = (key: string): string | undefined => {
      const ids = live()
      const known = owners.get(key)
      if (known !== undefined && known.view === view.key) return known.owner
      const owner = rendezvousOrder(key, ids)[0]
      if (owners.size >= MAX_OWNER_MEMO) owners.clear()
      owners.set(key, { view: view.key, owner })
      return owner
    }

    // Events recorded in the same turn of the event loop travel together: one store write and one
    // push per scheduler (a stream of its own per event cost more than the event).
    let batch: { records: RecordInput[], bytes: number, done: Promise<number> } | undefined
    const flush = async (records: RecordInput[]): Promise<number> => {
      await log.put(records)
      const peers = others()
      if (peers.length === 0) return 0
      const signal = AbortSignal.timeout(init.replicateTimeoutMs ?? REPLICATE_TIMEOUT_MS)
      const results = await Promise.allSettled(peers.map(async (p) => await sync.push(p, records, signal)))
      return results.filter((r) => r.status === 'fulfilled' && r.value.refused.length === 0).length
    }

    /** Records new to the log (each is stored once) go to the subscriptions component, in stored order. */
    const applyNew = async (records: LoggedRecord[]): Promise<void> => {
      for (const r of records) {
        try {
          const env = decodeEnvelope(r.data)
          if (nodeIdFromPublicKey(env.publicKey) === self) continue
          await c.apply(env)
        } catch (err) {
          logger.warn({ err, hash: r.hash }, 'a replicated subscription event was not applied')
        }
      }
    }

    const catchUp = async (): Promise<void> => {
      if (syncing) return
      syncing = true
      try {
        for (const peer of others()) {
          try {
            const result = await sync.catchUp(peer, { signal: AbortSignal.timeout(10_000) })
            if (result.fetched > 0) logger.debug({ peer, fetched: result.fetched }, 'caught up subscription events')
          } catch (err) {
            logger.debug({ err, peer }, 'subscription catch-up failed; retried at the next interval')
          }
        }
      } finally {
        syncing = false
      }
    }

    return {
      live,
      ownerOf,
      owns (key) {
        return ownerOf(key) === self
      },
      async replicate (envelope) {
        const record = { kind: SUBSCRIPTION_EVENT_KIND, data: encodeEnvelope(envelope) }
        // A batch stays one push request: bounded in records and bytes (an event carries a sealed output).
        if (batch === undefined || batch.records.length >= MAX_REPLICATE_BATCH || batch.bytes + record.data.length > MAX_REPLICATE_BATCH_BYTES) {
          const records: RecordInput[] = []
          const done = new Promise<void>((resolve) => { setImmediate(resolve) }).then(async () => {
            if (batch?.records === records) batch = undefined
            return await flush(records)
          })
          batch = { records, bytes: 0, done }
        }
        batch.records.push(record)
        batch.bytes += record.data.length
        return await batch.done
      },
      async start () {
        if (timer !== undefined) return
        await log.start()
        // Pushed to this node or fetched in a catch-up: applied in the order stored.
        offStored = log.on('stored', ({ records }) => { applying = applying.then(async () => { await applyNew(records) }) })
        await sync.start()
        timer = setInterval(() => { void catchUp() }, init.syncIntervalMs ?? COORDINATION_SYNC_INTERVAL_MS)
        timer.unref()
        void catchUp()
      },
      async stop () {
        if (timer === undefined) return
        clearInterval(timer)
        timer = undefined
        offStored()
        await applying
        await sync.stop()
        await log.stop()
      }
    }
  }
}
