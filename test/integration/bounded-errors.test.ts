import test from 'ava'
import * as grpc from '@grpc/grpc-js'
import { containerYaml, startFor, text } from '../helpers/node.ts'

/** Far below grpc-core's 8 KiB metadata limit, and what a person can still read. */
const MAX_DETAILS_BYTES = 512

function rpcCode (err: unknown): string {
  const code = (err as { code?: number } | null)?.code
  return code === undefined ? `not a gRPC error: ${String(err)}` : grpc.status[code]
}

function short (t: import('ava').ExecutionContext, err: unknown, name: string): void {
  const details = (err as grpc.ServiceError).details ?? ''
  t.true(details.length > 10, `${name}: the message says what is wrong`)
  t.true(Buffer.byteLength(details) < MAX_DETAILS_BYTES, `${name}: ${Buffer.byteLength(details)} bytes of details`)
  // The whole status as sent (grpc-js's trailer values), not only what the client kept.
  const trailer = (err as grpc.ServiceError).metadata?.getMap() ?? {}
  const total = Object.entries(trailer).reduce((n, [k, v]) => n + k.length + String(v).length, 0)
  t.true(total < MAX_DETAILS_BYTES, `${name}: ${total} bytes of trailers`)
}

test('huge job ids and container ids get a short INVALID_ARGUMENT that states the rule, on every method', async (t) => {
  const n = await startFor(t)
  const hugeJobId = 'j'.repeat(100_000)
  const hugeContainer = 'c'.repeat(10_000)
  const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
    ['GetJob', async () => await n.client.getJob(hugeJobId), /1-128 characters/],
    ['SubmitJob', async () => await n.client.submitJob({ containerId: 'echo', input: text('x'), jobId: hugeJobId }), /1-128 characters/],
    ['RunJob', async () => await n.client.runJob({ containerId: 'echo', input: text('x'), jobId: hugeJobId }), /1-128 characters/],
    ['SubmitJob container_id', async () => await n.client.submitJob({ containerId: hugeContainer, input: text('x') }), /1-63 characters/],
    ['SubmitJob containers', async () => await n.client.submitJob({ containers: ['echo', hugeContainer], input: text('x') }), /1-63 characters/],
    ['GetJob with a bad character', async () => await n.client.getJob('has spaces/and slashes'), /1-128 characters/]
  ]
  for (const [name, fn, rule] of cases) {
    const err = await t.throwsAsync(fn, undefined, name)
    t.is(rpcCode(err), 'INVALID_ARGUMENT', name)
    t.regex((err as grpc.ServiceError).details, rule, name)
    short(t, err, name)
  }
  const watch = async (): Promise<void> => { for await (const _ of n.client.watchJob(hugeJobId)) { /* refused before any event */ } }
  const err = await t.throwsAsync(watch)
  t.is(rpcCode(err), 'INVALID_ARGUMENT')
  short(t, err, 'WatchJob')
})

test('an unknown but well-formed id is still NOT_FOUND, quoted whole', async (t) => {
  const n = await startFor(t)
  const id = 'x'.repeat(128)
  const err = await t.throwsAsync(n.client.getJob(id))
  t.is(rpcCode(err), 'NOT_FOUND')
  short(t, err, 'GetJob unknown')
  const missing = await t.throwsAsync(n.client.submitJob({ containerId: 'nope', input: text('x') }))
  t.is(rpcCode(missing), 'NOT_FOUND')
  t.regex((missing as grpc.ServiceError).details, /"nope"/)
})

test('a long delegate is quoted as a prefix in a refusal', async (t) => {
  const n = await startFor(t, { containers: [containerYaml('echo', { allowed_delegates: ['12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'] })] })
  const err = await t.throwsAsync(n.client.submitJob({ containerId: 'echo', input: text('x'), delegate: 'd'.repeat(50_000) }))
  t.is(rpcCode(err), 'PERMISSION_DENIED')
  short(t, err, 'delegate')
})

test('a garbage body to health and reflection is INVALID_ARGUMENT, on both listeners', async (t) => {
  const n = await startFor(t)
  const garbage = [
    Buffer.from([0x0f, 0x01, 0x02]), // field 1 with wire type 7, which does not exist
    Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) // a length far past the end of the body
  ]
  for (const address of [n.node.api.publicAddress(), n.node.api.controlAddress()]) {
    const raw = new grpc.Client(address, grpc.credentials.createInsecure())
    t.teardown(() => raw.close())
    const pass = (b: Buffer): Buffer => b
    for (const body of garbage) {
      const unary = await new Promise<grpc.ServiceError | null>((resolve) => {
        raw.makeUnaryRequest('/grpc.health.v1.Health/Check', pass, pass, body, (e) => resolve(e))
      })
      t.is(rpcCode(unary), 'INVALID_ARGUMENT', `Health/Check on ${address}`)
      t.regex(unary?.details ?? '', /HealthCheckRequest/)

      const watched = await new Promise<grpc.ServiceError | null>((resolve) => {
        const stream = raw.makeServerStreamRequest('/grpc.health.v1.Health/Watch', pass, pass, body)
        stream.on('data', () => {})
        stream.on('error', (e: grpc.ServiceError) => resolve(e))
        stream.on('end', () => resolve(null))
      })
      t.is(rpcCode(watched), 'INVALID_ARGUMENT', `Health/Watch on ${address}`)

      for (const version of ['v1', 'v1alpha']) {
        const reflected = await new Promise<grpc.ServiceError | null>((resolve) => {
          const stream = raw.makeBidiStreamRequest(`/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`, pass, pass)
          stream.on('data', () => {})
          stream.on('error', (e: grpc.ServiceError) => resolve(e))
          stream.on('end', () => resolve(null))
          stream.write(body)
          stream.end()
        })
        t.is(rpcCode(reflected), 'INVALID_ARGUMENT', `reflection ${version} on ${address}`)
      }
    }
  }
  // Well-formed calls still work.
  const health = new grpc.Client(n.node.api.publicAddress(), grpc.credentials.createInsecure())
  t.teardown(() => health.close())
  const ok = await new Promise<Buffer | undefined>((resolve, reject) => {
    health.makeUnaryRequest('/grpc.health.v1.Health/Check', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (e, res) => { if (e !== null) reject(e); else resolve(res) })
  })
  // HealthCheckResponse { status: SERVING (1) }
  t.deepEqual(ok, Buffer.from([0x08, 0x01]))
})
