import * as grpc from '@grpc/grpc-js'
import type { Logger } from '../telemetry/logger.ts'
import { toServiceError } from './errors.ts'

/**
 * A unary handler from an async body: whatever it throws becomes the status from the one table in
 * errors.ts; only unexpected failures (INTERNAL) are logged as errors.
 */
export function unary<Req, Res> (logger: Logger, method: string, body: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    body(call.request, call).then((res) => callback(null, res), (err: unknown) => {
      const status = toServiceError(err)
      if (status.code === grpc.status.INTERNAL) logger.error({ err, method }, 'request failed')
      else logger.debug({ method, code: status.code, details: status.details }, 'request refused')
      callback(status as grpc.ServiceError, null)
    })
  }
}
