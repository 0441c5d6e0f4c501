/**
 * Node.GetReceipt, Node.GetCertificate and Node.ListRecords: thin adapters over the archive
 * component. Status codes come from the one table in errors.ts (RECORD_NOT_FOUND → NOT_FOUND,
 * NOT_AN_ARCHIVE → FAILED_PRECONDITION, INVALID_RECORD_REQUEST / INVALID_PAGE_TOKEN → INVALID_ARGUMENT).
 */
import type * as grpc from '@grpc/grpc-js'
import { NotAnArchiveError, type Archive } from '../archive/index.ts'
import type { GetRecordRequest, ListRecordsRequest, ListRecordsResponse, RecordReply } from '../protocol/index.ts'
import { silentLogger, type Logger } from '../telemetry/logger.ts'
import { unary } from './unary.ts'

/** Handlers for a node with the archive role; on any other node (`archive` undefined) each answers NOT_AN_ARCHIVE. */
export function archiveHandlers (archive: Archive | undefined, logger: Logger = silentLogger()): Pick<grpc.UntypedServiceImplementation, 'GetReceipt' | 'GetCertificate' | 'ListRecords'> {
  const held = (): Archive => {
    if (archive === undefined) throw new NotAnArchiveError()
    return archive
  }
  return {
    GetReceipt: unary(logger, 'GetReceipt', async (req: GetRecordRequest): Promise<RecordReply> =>
      await held().getReceipt({ jobId: req.jobId, hash: req.hash })),
    GetCertificate: unary(logger, 'GetCertificate', async (req: GetRecordRequest): Promise<RecordReply> =>
      await held().getCertificate({ jobId: req.jobId, hash: req.hash })),
    ListRecords: unary(logger, 'ListRecords', async (req: ListRecordsRequest): Promise<ListRecordsResponse> =>
      await held().listRecords(req))
  }
}
