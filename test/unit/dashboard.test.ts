import test from 'ava'
import type { IncomingMessage } from 'node:http'
import { fileURLToPath } from 'node:url'
import { ConfigError, loadConfig, parseConfig } from '../../src/config/index.ts'
import { Refusals, Series } from '../../src/dashboard/history.ts'
import { guard, hostName } from '../../src/dashboard/http.ts'
import { DashboardRequestError } from '../../src/dashboard/errors.ts'
import { jobDetailView, jobView, shownError } from '../../src/dashboard/views.ts'
import { BUCKET_MS, BUCKETS_KEPT, MAX_ERROR_CHARS } from '../../src/dashboard/constants.ts'
import type { JobEvent } from '../../src/gateway/types.ts'
import type { JobRecord } from '../../src/store/types.ts'

// The dashboard's own logic: its config key, its request guard, what a job view keeps (and never
// keeps), and the chart history. The page in a real browser: test/integration/dashboard.test.ts.

function configError (text: string): ConfigError {
  const err = (() => {
    try {
      parseConfig(text, '')
    } catch (e) {
      return e
    }
    return undefined
  })()
  if (!(err instanceof ConfigError)) throw new Error('expected a ConfigError')
  return err
}

test('dashboard config: on at 127.0.0.1:9090 by default, off with listen "", loopback only, no shared port', (t) => {
  t.deepEqual(parseConfig('', '').dashboard, { enabled: true, host: '127.0.0.1', port: 9090 })
  t.deepEqual(loadConfig(fileURLToPath(new URL('../../config.yaml', import.meta.url))).dashboard, parseConfig('', '').dashboard, 'config.yaml documents the default')
  t.deepEqual(parseConfig('dashboard: { listen: "" }', '').dashboard.enabled, false)
  t.deepEqual(parseConfig('dashboard: { listen: "[::1]:8080" }', '').dashboard, { enabled: true, host: '::1', port: 8080 })
  t.deepEqual(parseConfig('dashboard: { listen: "localhost:0" }', '').dashboard, { enabled: true, host: 'localhost', port: 0 })

  const wide = configError('dashboard: { listen: "0.0.0.0:9090" }')
  t.is(wide.code, 'INVALID_VALUE')
  t.is(wide.key, 'dashboard.listen')
  t.regex(wide.message, /loopback only/)
  t.regex(wide.message, /"" to turn it off/)

  t.is(configError('dashboard: { listen: "nine" }').key, 'dashboard.listen')
  t.is(configError('dashboard: { listen: 9090 }').code, 'WRONG_TYPE')
  t.is(configError('dashboard: { port: 9090 }').code, 'UNKNOWN_KEY')
  const clash = configError('telemetry: { metrics: { listen: "127.0.0.1:9090" } }')
  t.is(clash.code, 'DUPLICATE')
  t.is(clash.key, 'dashboard.listen')
  // Off, it holds no port.
  t.notThrows(() => parseConfig('telemetry: { metrics: { listen: "127.0.0.1:9090" } }\ndashboard: { listen: "" }', ''))
})

function request (headers: Record<string, string>, method = 'GET'): IncomingMessage {
  return { method, headers } as unknown as IncomingMessage
}

function refusedWith (fn: () => void): DashboardRequestError {
  try {
    fn()
  } catch (err) {
    if (err instanceof DashboardRequestError) return err
    throw err
  }
  throw new Error('expected a DashboardRequestError')
}

test('guard: GET and HEAD to a loopback name only; cross-site reads refused, links to the page allowed', (t) => {
  t.is(hostName('127.0.0.1:9090'), '127.0.0.1')
  t.is(hostName('LOCALHOST'), 'localhost')
  t.is(hostName('[::1]:9090'), '::1')
  t.is(hostName('evil.example:9090'), 'evil.example')
  t.is(hostName('a:b:c'), undefined)
  t.is(hostName(''), undefined)

  t.notThrows(() => { guard(request({ host: '127.0.0.1:9090' }), '/api/jobs') })
  t.notThrows(() => { guard(request({ host: 'localhost:1234' }, 'HEAD'), '/') })
  t.notThrows(() => { guard(request({ host: '[::1]:9090', 'sec-fetch-site': 'same-origin' }), '/api/node') })

  const post = refusedWith(() => { guard(request({ host: '127.0.0.1:9090' }, 'POST'), '/api/jobs') })
  t.is(post.status, 405)
  t.is(post.headers.allow, 'GET, HEAD')
  t.is(refusedWith(() => { guard(request({ host: '127.0.0.1:9090' }, 'OPTIONS'), '/') }).status, 405)
  t.is(refusedWith(() => { guard(request({ host: 'rebound.example:9090' }), '/api/jobs') }).code, 'HOST_NOT_ALLOWED')
  t.is(refusedWith(() => { guard(request({}), '/') }).code, 'HOST_NOT_ALLOWED')
  t.is(refusedWith(() => { guard(request({ host: '127.0.0.1.nip.io:9090' }), '/') }).code, 'HOST_NOT_ALLOWED')
  t.is(refusedWith(() => { guard(request({ host: '127.0.0.1', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' }), '/api/jobs') }).code, 'CROSS_SITE')
  t.is(refusedWith(() => { guard(request({ host: '127.0.0.1', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' }), '/api/jobs') }).code, 'CROSS_SITE')
  t.notThrows(() => { guard(request({ host: '127.0.0.1', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' }), '/') })
})

const INPUT = new TextEncoder().encode('the client secret input')
const OUTPUT = new TextEncoder().encode('the client secret output')

function record (over: Partial<JobRecord> = {}): JobRecord {
  return {
    id: 'job-1',
    containerId: 'a',
    containers: ['a', 'b'],
    steps: [
      { containerId: 'a', imageDigest: 'sha256:' + '1'.repeat(64), output: OUTPUT, outputHash: new Uint8Array(32).fill(7), outputBytes: OUTPUT.byteLength, exitCode: 0, latencyMs: 5, startedAtMs: 10, finishedAtMs: 15, status: 'success', error: '', errorCode: '' },
      { containerId: 'b', imageDigest: 'sha256:' + '2'.repeat(64), outputHash: new Uint8Array(32).fill(9), outputBytes: 0, exitCode: 3, latencyMs: 6, startedAtMs: 16, finishedAtMs: 22, status: 'failed', error: `exited with code 3; stderr: ${new TextDecoder().decode(INPUT)}`, errorCode: 'NONZERO_EXIT' }
    ],
    input: INPUT,
    origin: { ip: '203.0.113.9', peerId: '', delegate: '' },
    requiresProof: false,
    state: 'failed',
    createdAtMs: 1,
    deadlineAtMs: 60_001,
    startedAtMs: 10,
    finishedAtMs: 22,
    history: [{ state: 'pending', atMs: 1, detail: 'accepted' }, { state: 'failed', atMs: 22, detail: 'failed' }],
    output: OUTPUT,
    error: `step 2/2 (b) exited with code 3; stderr: ${new TextDecoder().decode(INPUT)}`,
    errorCode: 'NONZERO_EXIT',
    latencyMs: 21,
    schedulerId: '',
    allowProbation: false,
    ...over
  } as JobRecord
}

test('job views carry ids, states, sizes and hashes, never the input, outputs, origin or stderr', (t) => {
  const self = '12D3KooWself'
  const detail = jobDetailView(record(), self)
  const text = JSON.stringify(detail)
  t.false(text.includes('secret'), text)
  t.false(text.includes('203.0.113.9'))
  t.false(text.includes('stderr'))
  t.is(detail.error, 'step 2/2 (b) exited with code 3')
  t.is(detail.steps[1].error, 'exited with code 3')
  t.is(detail.steps[0].outputSha256, '07'.repeat(32))
  t.is(detail.steps[0].outputBytes, OUTPUT.byteLength)
  t.is(detail.inputBytes, INPUT.byteLength)
  t.is(detail.inputSha256.length, 64)
  t.is(detail.workerId, self, 'a job this node ran names this node as its worker')
  t.is(detail.lane, 'local')
  t.is(detail.receipt, false)
  t.is(detail.verification, null)
  t.deepEqual(detail.history.map((h) => h.state), ['pending', 'failed'])

  const mesh = jobView(record({ workerId: '12D3KooWother', state: 'success', verification: { method: 'reexecute', validators: 2, quorum: 2, state: 'pending', reason: '' } }), self)
  t.is(mesh.lane, 'mesh')
  t.is(mesh.workerId, '12D3KooWother')
  t.deepEqual(mesh.verification, { method: 'reexecute', validators: 2, quorum: 2, state: 'pending', reason: '', certificate: false })
  t.is(jobView(record({ steps: [], state: 'pending' }), self).workerId, '', 'no worker before anything ran')

  t.is(shownError('x'.repeat(MAX_ERROR_CHARS + 50)).length, MAX_ERROR_CHARS)
  t.is(shownError(''), '')
})

function finished (state: 'success' | 'failed', atMs: number, latencyMs: number): JobEvent {
  return { jobId: `j${atMs}`, containerId: 'a', state, atMs, detail: state, lane: 'local', latencyMs }
}

test('series: finished jobs per bucket with latency percentiles, from the start up to the window', (t) => {
  let now = 1_000_000 * BUCKET_MS
  const series = new Series(() => now)
  t.is(series.points().length, 1, 'a new series has one (empty) point')
  series.record({ ...finished('success', now + 1, 10), state: 'running' })
  t.deepEqual(series.points()[0], { t: now, succeeded: 0, failed: 0, p50: 0, p95: 0, max: 0 }, 'only terminal events count')

  for (let i = 1; i <= 100; i++) series.record(finished('success', now + 10, i))
  series.record(finished('failed', now + 20, 1000))
  now += 2 * BUCKET_MS + 1
  series.record(finished('success', now, 50))
  const points = series.points()
  t.is(points.length, 3)
  t.deepEqual(points.map((p) => p.succeeded), [100, 0, 1])
  t.is(points[0].failed, 1)
  t.is(points[0].max, 1000)
  t.is(points[0].p50, 51)
  t.is(points[0].p95, 96)
  t.deepEqual(series.latest(1), [points[2]])

  // Past the window the oldest buckets go, and the axis stays BUCKETS_KEPT points long.
  now += BUCKETS_KEPT * BUCKET_MS
  series.record(finished('success', now, 5))
  const later = series.points()
  t.is(later.length, BUCKETS_KEPT)
  t.is(later.reduce((a, p) => a + p.succeeded, 0), 1)
})

test('series: latency samples per bucket are bounded, counts stay exact', (t) => {
  const now = 5 * BUCKET_MS
  const series = new Series(() => now)
  for (let i = 0; i < 20_000; i++) series.record(finished('success', now, i % 100))
  const [p] = series.points()
  t.is(p.succeeded, 20_000)
  t.is(p.max, 99)
  t.true(p.p50 > 30 && p.p50 < 70, `p50 of a uniform 0..99 sample: ${p.p50}`)
})

test('refusals: the latest Guardian refusals newest first, bounded, with counts by rule', (t) => {
  const r = new Refusals()
  for (let i = 0; i < 150; i++) r.guardian({ reason: i % 2 === 0 ? 'IP_NOT_ALLOWED' : 'UNKNOWN_CONTAINER', containerId: `c${i}`, code: 'PERMISSION_DENIED' }, i)
  r.refused({ code: 'RESOURCE_EXHAUSTED', reason: 'QUEUE_FULL' })
  r.refused({ code: 'PERMISSION_DENIED', reason: 'IP_NOT_ALLOWED' })
  const v = r.view()
  t.is(v.recent.length, 100)
  t.is(v.recent[0].containerId, 'c149')
  t.deepEqual(v.guardianByReason, { IP_NOT_ALLOWED: 75, UNKNOWN_CONTAINER: 75 })
  t.deepEqual(v.allByReason, { QUEUE_FULL: 1, IP_NOT_ALLOWED: 1 })
  t.false('ip' in v.recent[0], 'no origin in a refusal')
})
