/**
 * The asking side of a record sync protocol (list, fetch, store): one stream per request, one
 * length-prefixed SyncRequest out, one SyncResponse back, then close. Used by recordSync and by
 * producers that only push (the archive sink).
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from 'it-length-prefixed-stream'
import type { MeshLibp2p } from '../mesh/libp2p.ts'
import {
  decodeSyncResponse, encodeSyncRequest, type StoredRecord, type SyncRequest, type SyncResponse
} from '../protocol/index.ts'
import { MAX_SYNC_RESPONSE_BYTES, SYNC_TIMEOUT_MS } from './constants.ts'
import { SyncError } from './errors.ts'
import type { LogEntry, RecordInput, Refusal } from './log.ts'
import { sha256Hex } from './log.ts'

export interface SyncPage {
  entries: LogEntry[]
  more: boolean
}

/** A fetched record and the sha256 (hex) of its data, one of the hashes asked for. */
export type FetchedRecord = StoredRecord & { hash: string }

export interface PushResult {
  stored: number
  refused: Refusal[]
}

/** One request, one response; anything but OK is a SyncError naming why. */
export async function request (libp2p: MeshLibp2p, protocol: string, peer: string, req: SyncRequest, signal?: AbortSignal): Promise<SyncResponse> {
  const sig = AbortSignal.any([AbortSignal.timeout(SYNC_TIMEOUT_MS), ...(signal !== undefined ? [signal] : [])])
  let response: SyncResponse
  try {
    const stream = await libp2p.dialProtocol(peerIdFromString(peer), protocol, { signal: sig, runOnLimitedConnection: true })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_SYNC_RESPONSE_BYTES })
      await lp.write(encodeSyncRequest(req), { signal: sig })
      response = decodeSyncResponse((await lp.read({ signal: sig })).subarray())
      await stream.close({ signal: sig }).catch(() => {})
    } catch (err) {
      stream.abort(err as Error)
      throw err
    }
  } catch (err) {
    throw new SyncError('SYNC_FAILED', peer, (err as Error).message, { cause: err })
  }
  if (response.status === 'DENIED') throw new SyncError('SYNC_DENIED', peer, `denied: ${response.error}`)
  if (response.status === 'RATE_LIMITED') throw new SyncError('SYNC_RATE_LIMITED', peer, `rate limited: ${response.error}`)
  if (response.status !== 'OK') throw new SyncError('SYNC_ERROR', peer, response.error)
  return response
}

const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

export async function listFrom (libp2p: MeshLibp2p, protocol: string, peer: string, opts: { sinceMs: number, afterHash: string, limit: number }, signal?: AbortSignal): Promise<SyncPage> {
  const res = await request(libp2p, protocol, peer, {
    list: { sinceMs: opts.sinceMs, afterHash: opts.afterHash === '' ? new Uint8Array(0) : Buffer.from(opts.afterHash, 'hex'), limit: opts.limit }
  }, signal)
  const entries: LogEntry[] = []
  for (const e of res.entries) {
    // A hash that is not a sha256 cannot name anything we would store: skip it rather than ask for it.
    if (e.hash.byteLength !== 32) continue
    entries.push({ hash: hexOf(e.hash), storedAtMs: e.storedAtMs, kind: e.kind })
  }
  return { entries, more: res.more }
}

/**
 * The records among `hashes` the peer holds. Records whose data does not hash to one asked for are
 * dropped here (they name nothing we asked for); the caller's log verifies the rest before storing.
 */
export async function fetchFrom (libp2p: MeshLibp2p, protocol: string, peer: string, hashes: string[], signal?: AbortSignal): Promise<FetchedRecord[]> {
  const res = await request(libp2p, protocol, peer, { fetch: { hashes: hashes.map((h) => Buffer.from(h, 'hex')) } }, signal)
  const asked = new Set(hashes)
  const out: FetchedRecord[] = []
  for (const r of res.records) {
    const hash = sha256Hex(r.data)
    if (asked.delete(hash)) out.push({ ...r, hash })
  }
  return out
}

export async function pushTo (libp2p: MeshLibp2p, protocol: string, peer: string, records: RecordInput[], signal?: AbortSignal): Promise<PushResult> {
  const res = await request(libp2p, protocol, peer, {
    store: { records: records.map((r) => ({ kind: r.kind, data: r.data, storedAtMs: 0, jobId: '', nodeIds: [] })) }
  }, signal)
  return { stored: res.stored, refused: res.refused.map(parseRefusal) }
}

/** A refusal on the wire: "<hash hex> <code> <reason>" (docs/ARCHIVE.md). */
export function formatRefusal (r: Refusal): string {
  return `${r.hash} ${r.code} ${r.reason}`
}

export function parseRefusal (s: string): Refusal {
  const [hash = '', code = '', ...rest] = s.split(' ')
  return { hash, code, reason: rest.join(' ') }
}
