/**
 * The protocol layer: one loader of proto/inframind/v1, strict decoding of everything that arrives
 * from outside, types generated from the .proto files, and the names of every topic, payload type and
 * protocol id.
 */
export * from './constants.ts'
export * from './errors.ts'
export type * from './generated.ts'
export { encode, decodeStrict, assertWellFormed } from './codec.ts'
export { wireViolation, findViolation, MAX_DEPTH, type WireViolation } from './strict.ts'
export {
  PROTO_ROOT, PROTO_DIR, HEALTH_PROTO, LOADER_OPTIONS, protoFiles, protoRoot, messageType, serviceType, packageDefinition
} from './loader.ts'
export {
  encodeHeartbeat, decodeHeartbeat, encodeAssignment, decodeAssignment, encodeAck, decodeAck,
  encodeJobResult, decodeJobResult, encodeOutputChunk, decodeOutputChunk, encodeAttestation, decodeAttestation,
  encodeAssignmentSecret, decodeAssignmentSecret, encodeRoster, decodeRoster, encodeRosterNotice, decodeRosterNotice,
  encodeFetchRequest, decodeFetchRequest, encodeFetchResponse, decodeFetchResponse, FETCH_STATUSES,
  encodeCertificate, decodeCertificate, encodeDisputeRecord, decodeDisputeRecord
} from './messages.ts'
export type { FetchResponse, FetchStatus } from './messages.ts'
export { encodeStoredRecord, decodeStoredRecord, encodeSyncRequest, decodeSyncRequest, encodeSyncResponse, decodeSyncResponse, SYNC_STATUSES, type SyncResponse, type SyncStatus } from './records.ts'
export * from './subscriptions.ts'
