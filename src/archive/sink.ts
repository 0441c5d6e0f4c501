/**
 * The producer side of archiving, for schedulers and gateways: push(kind, data) queues a record and
 * returns at once; every SINK_FLUSH_MS the queue goes out, each record to its `replicas` rendezvous
 * holders among the live archives, one store request per holder. Best effort: a record no holder
 * took is counted, never retried for ever and never waited on by a job (archives also catch up from
 * each other, so one holder that took it is enough for it to spread).
 */
import type { Mesh } from '../mesh/index.ts'
import { ARCHIVE_SYNC_PROTOCOL } from '../protocol/index.ts'
import { MAX_RECORD_BYTES, MAX_SYNC_REQUEST_BYTES, pushTo, sha256Hex, type RecordInput } from '../records/index.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { Startable } from '../types.ts'
import { DEFAULT_REPLICAS, DISCOVER_INTERVAL_MS, MAX_SINK_QUEUE, SINK_BATCH, SINK_FLUSH_MS, SINK_STOP_GRACE_MS } from './constants.ts'
import { connectedArchives, discoverArchives, holdersOf, type ArchiveAdmission } from './live.ts'

export interface ArchiveSinkInit {
  /** Archives each record is sent to (default DEFAULT_REPLICAS). */
  replicas?: number
  /** How often the queue is sent (default SINK_FLUSH_MS). */
  flushMs?: number
}

export interface ArchiveSinkComponents {
  mesh: Pick<Mesh, 'libp2p' | 'nodeId' | 'findProviders'>
  admission: ArchiveAdmission
  logger: Logger
  metrics?: Metrics
}

export interface SinkStats {
  /** Records some holder took (stored or already held). */
  sent: number
  /** Records no holder took (no live archive, every push failed, or refused). */
  failed: number
  /** Records dropped because the queue was full. */
  dropped: number
  /** Records waiting to be sent. */
  queued: number
}

export interface ArchiveSink extends Startable {
  /** Queues one record for the archives; never blocks, never throws. */
  push(kind: string, data: Uint8Array): void
  /** Sends what is queued now (tests, shutdown). */
  flush(): Promise<void>
  stats(): SinkStats
}

/** Splits records into store requests of at most SINK_BATCH records and a frame's bytes. */
function requests<T extends { record: RecordInput }> (list: T[]): T[][] {
  const out: T[][] = []
  let current: T[] = []
  let bytes = 0
  for (const item of list) {
    const size = item.record.data.byteLength + item.record.kind.length + 16
    if (current.length > 0 && (current.length === SINK_BATCH || bytes + size > MAX_REQUEST_PAYLOAD)) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(item)
    bytes += size
  }
  if (current.length > 0) out.push(current)
  return out
}

/** Record bytes in one store request, well inside the protocol's frame limit. */
const MAX_REQUEST_PAYLOAD = MAX_SYNC_REQUEST_BYTES - 64 * 1024

export function archiveSink (init: ArchiveSinkInit = {}) {
  return (components: ArchiveSinkComponents): ArchiveSink => {
    const { mesh, admission } = components
    const replicas = Math.max(1, init.replicas ?? DEFAULT_REPLICAS)
    const flushMs = init.flushMs ?? SINK_FLUSH_MS
    const logger = components.logger.child({ component: 'archive-sink' })
    const pushed = components.metrics?.counter({ name: 'inframind_archive_pushes_total', help: 'Records this node sent to archives, by outcome: sent (a holder took it), failed (none did), dropped (queue full)', labelNames: ['outcome'] })
    const stats = { sent: 0, failed: 0, dropped: 0 }
    let queue: RecordInput[] = []
    let running = false
    let timer: NodeJS.Timeout | undefined
    let lastDiscoverMs = 0
    let stopping = new AbortController()
    let sending: Promise<void> = Promise.resolve()

    const count = (outcome: 'sent' | 'failed' | 'dropped', n: number): void => {
      if (n === 0) return
      stats[outcome] += n
      pushed?.inc({ outcome }, n)
    }

    const send = async (): Promise<void> => {
      if (queue.length === 0) return
      let live = connectedArchives(mesh, admission)
      if (live.length === 0 && Date.now() - lastDiscoverMs >= DISCOVER_INTERVAL_MS) {
        lastDiscoverMs = Date.now()
        await discoverArchives(mesh, admission, stopping.signal).catch(() => {})
        live = connectedArchives(mesh, admission)
      }
      const records = queue.splice(0, queue.length)
      if (live.length === 0) {
        count('failed', records.length)
        logger.debug({ records: records.length }, 'no live archive to send records to')
        return
      }
      const byHolder = new Map<string, Array<{ hash: string, record: RecordInput }>>()
      for (const record of records) {
        const hash = sha256Hex(record.data)
        for (const holder of holdersOf(hash, live, replicas)) {
          let list = byHolder.get(holder)
          if (list === undefined) byHolder.set(holder, list = [])
          list.push({ hash, record })
        }
      }
      const taken = new Set<string>()
      await Promise.all([...byHolder].map(async ([holder, list]) => {
        for (const part of requests(list)) {
          try {
            const result = await pushTo(mesh.libp2p(), ARCHIVE_SYNC_PROTOCOL, holder, part.map((p) => p.record), stopping.signal)
            const refused = new Set(result.refused.map((r) => r.hash))
            for (const p of part) if (!refused.has(p.hash)) taken.add(p.hash)
            if (refused.size > 0) logger.warn({ holder, refused: result.refused.length, first: result.refused[0] }, 'an archive refused records')
          } catch (err) {
            logger.debug({ holder, records: part.length, err: (err as Error).message }, 'push to an archive failed')
          }
        }
      }))
      const hashes = new Set(records.map((r) => sha256Hex(r.data)))
      count('sent', [...hashes].filter((h) => taken.has(h)).length)
      count('failed', [...hashes].filter((h) => !taken.has(h)).length)
    }

    const flush = async (): Promise<void> => {
      // One send at a time, in order.
      const next = sending.then(send, send)
      sending = next.catch((err: unknown) => logger.warn({ err }, 'archive push failed'))
      await sending
    }

    return {
      push (kind, data) {
        // No archive keeps it: not worth a request.
        if (data.byteLength > MAX_RECORD_BYTES) { count('failed', 1); return }
        if (queue.length >= MAX_SINK_QUEUE) { count('dropped', 1); return }
        queue.push({ kind, data })
      },
      flush,
      stats: () => ({ ...stats, queued: queue.length }),
      async start () {
        if (running) return
        running = true
        stopping = new AbortController()
        const tick = (): void => {
          flush().finally(() => { if (running) timer = setTimeout(tick, flushMs) })
        }
        timer = setTimeout(tick, flushMs)
      },
      async stop () {
        if (!running) return
        running = false
        clearTimeout(timer)
        // What is queued gets one last try, for at most SINK_STOP_GRACE_MS.
        const grace = setTimeout(() => stopping.abort(new Error('archive sink stopping')), SINK_STOP_GRACE_MS)
        await flush()
        clearTimeout(grace)
        stopping.abort(new Error('archive sink stopping'))
        await sending
      }
    }
  }
}
