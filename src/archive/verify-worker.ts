/** A verify-pool thread: verifies batches of archive records (verify.ts) and answers each with its outcome. */
import { parentPort } from 'node:worker_threads'
import { refusalOf, type RecordInput, type VerifyOutcome } from '../records/index.ts'
import { verifyArchiveRecord } from './verify.ts'

parentPort?.on('message', (msg: { id: number, records: RecordInput[] }) => {
  const results: VerifyOutcome[] = msg.records.map((r) => {
    try {
      return { index: verifyArchiveRecord(r.kind, r.data) }
    } catch (err) {
      return { error: refusalOf(err) }
    }
  })
  parentPort?.postMessage({ id: msg.id, results })
})
