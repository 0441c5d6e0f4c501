import test from 'ava'
import * as grpc from '@grpc/grpc-js'
import { ERROR_CODE_KEY } from '../../src/api/errors.ts'
import { limitPerCaller } from '../../src/api/node-service.ts'
import { KeyedRateLimiter } from '../../src/mesh/index.ts'

interface Outcome { err: grpc.ServiceError | null, value: unknown }

/** Calls a unary handler as grpc-js would, from `peer`, and returns what it answered. */
async function call (handler: grpc.handleUnaryCall<unknown, unknown>, peer: string): Promise<Outcome> {
  return await new Promise((resolve) => {
    handler({ getPeer: () => peer, request: {} } as never, ((err: grpc.ServiceError | null, value: unknown) => resolve({ err, value })) as never)
  })
}

test('AssignJob/ReportResult per caller IP: over the burst the call is RESOURCE_EXHAUSTED before the handler runs; other IPs are unaffected', async (t) => {
  let ran = 0
  const handler: grpc.handleUnaryCall<unknown, unknown> = (_call, callback) => {
    ran++
    callback(null, { ok: true })
  }
  const limited = limitPerCaller('AssignJob', handler, new KeyedRateLimiter({ perSecond: 1, burst: 3, maxKeys: 16 }))
  const results: Outcome[] = []
  for (let i = 0; i < 5; i++) results.push(await call(limited, '10.0.0.1:5000'))
  t.is(ran, 3)
  t.deepEqual(results.slice(0, 3).map((r) => r.err), [null, null, null])
  for (const r of results.slice(3)) {
    t.is(r.err?.code, grpc.status.RESOURCE_EXHAUSTED)
    t.deepEqual(r.err?.metadata?.get(ERROR_CODE_KEY), ['RATE_LIMITED'])
    t.regex(r.err?.details ?? '', /AssignJob.*slow down/)
  }
  // Another port of the same host is the same caller; another host is not.
  t.is((await call(limited, '10.0.0.1:6000')).err?.code, grpc.status.RESOURCE_EXHAUSTED)
  t.is((await call(limited, 'ipv4:10.0.0.2:5000')).err, null)
  t.is(ran, 4)
})
