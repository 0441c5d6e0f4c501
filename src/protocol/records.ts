/** Named codecs of the record sync protocols (records.proto): requests, responses and stored records. */
import type * as G from './generated.ts'
import { decodeStrict, encode } from './codec.ts'
import { MalformedMessageError } from './errors.ts'

export type { StoredRecord, SyncRequest, SyncList, SyncFetch, SyncStore, SyncEntry, GetRecordRequest, RecordReply, ListRecordsRequest, ListRecordsResponse } from './generated.ts'

export const encodeStoredRecord = (m: G.StoredRecord): Uint8Array => encode('inframind.v1.StoredRecord', m)
export const decodeStoredRecord = (b: Uint8Array): G.StoredRecord => decodeStrict('inframind.v1.StoredRecord', b)

export const encodeSyncRequest = (m: G.SyncRequest): Uint8Array => encode('inframind.v1.SyncRequest', m)

/** Strict decode, and exactly one of list, fetch, store must be set (the server switches on it). */
export function decodeSyncRequest (b: Uint8Array): G.SyncRequest {
  const m = decodeStrict('inframind.v1.SyncRequest', b)
  const set = [m.list, m.fetch, m.store].filter((x) => x !== undefined && x !== null).length
  if (set !== 1) throw new MalformedMessageError('inframind.v1.SyncRequest', `exactly one of list, fetch, store must be set, got ${set}`, { field: 'request' })
  return m
}

/** The statuses records.proto lists for SyncResponse.status (a string on the wire, a closed set here). */
export const SYNC_STATUSES = ['OK', 'ERROR', 'RATE_LIMITED', 'DENIED'] as const
export type SyncStatus = typeof SYNC_STATUSES[number]

export interface SyncResponse extends Omit<G.SyncResponse, 'status'> {
  status: SyncStatus
}

export const encodeSyncResponse = (m: SyncResponse): Uint8Array => encode('inframind.v1.SyncResponse', m)

/** Strict decode, and a status outside SYNC_STATUSES is malformed too. */
export function decodeSyncResponse (b: Uint8Array): SyncResponse {
  const m = decodeStrict('inframind.v1.SyncResponse', b)
  if (!(SYNC_STATUSES as readonly string[]).includes(m.status)) {
    throw new MalformedMessageError('inframind.v1.SyncResponse', `"${m.status.slice(0, 32)}" is not one of ${SYNC_STATUSES.join(', ')}`, { field: 'status' })
  }
  return m as SyncResponse
}
