/**
 * Worker threads that verify archive records (signatures dominate a catch-up's CPU: ~90 µs a
 * receipt), so the event loop keeps reading the network and the disk meanwhile. Whatever goes wrong
 * with a thread, a batch is verified inline instead: the pool can slow verification down, never skip it.
 */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { refusalOf, type RecordInput, type VerifyOutcome } from '../records/index.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Startable } from '../types.ts'
import { MAX_VERIFY_THREADS } from './constants.ts'
import { verifyArchiveRecord } from './verify.ts'

export interface VerifyPoolInit {
  /** Threads (default: the cores but one, at least 1, at most MAX_VERIFY_THREADS). */
  threads?: number
}

export interface VerifyPool extends Startable {
  verify(records: RecordInput[]): Promise<VerifyOutcome[]>
}

interface Pending { resolve: (r: VerifyOutcome[]) => void, reject: (err: Error) => void }

const inline = (records: RecordInput[]): VerifyOutcome[] => records.map((r) => {
  try {
    return { index: verifyArchiveRecord(r.kind, r.data) }
  } catch (err) {
    return { error: refusalOf(err) }
  }
})

export function verifyPool (init: VerifyPoolInit = {}) {
  return (components: { logger: Logger }): VerifyPool => {
    const logger = components.logger.child({ component: 'archive-verify' })
    const size = Math.max(1, Math.min(MAX_VERIFY_THREADS, init.threads ?? availableParallelism() - 1))
    let workers: Worker[] = []
    const pending = new Map<number, Pending>()
    let nextId = 0
    let turn = 0

    const failAll = (err: Error): void => {
      for (const p of pending.values()) p.reject(err)
      pending.clear()
    }

    const onThread = async (records: RecordInput[]): Promise<VerifyOutcome[]> => {
      const worker = workers[turn++ % workers.length]
      const id = nextId++
      return await new Promise<VerifyOutcome[]>((resolve, reject) => {
        pending.set(id, { resolve, reject })
        worker.postMessage({ id, records })
      })
    }

    return {
      async verify (records) {
        if (workers.length === 0) return inline(records)
        // One slice per thread, so a large batch uses them all.
        const per = Math.ceil(records.length / workers.length)
        const slices: RecordInput[][] = []
        for (let i = 0; i < records.length; i += per) slices.push(records.slice(i, i + per))
        const results = await Promise.all(slices.map(async (slice) => await onThread(slice).catch((err: unknown) => {
          logger.warn({ err }, 'verify thread failed; verifying inline')
          return inline(slice)
        })))
        return results.flat()
      },
      async start () {
        if (workers.length > 0) return
        workers = Array.from({ length: size }, () => {
          const w = new Worker(new URL('./verify-worker.ts', import.meta.url))
          w.on('message', (msg: { id: number, results: VerifyOutcome[] }) => {
            const p = pending.get(msg.id)
            pending.delete(msg.id)
            p?.resolve(msg.results)
          })
          w.on('error', (err) => {
            logger.warn({ err }, 'verify thread crashed')
            workers = workers.filter((x) => x !== w)
            failAll(err)
          })
          return w
        })
      },
      async stop () {
        const all = workers
        workers = []
        failAll(new Error('verify pool stopping'))
        await Promise.all(all.map(async (w) => await w.terminate()))
      }
    }
  }
}
