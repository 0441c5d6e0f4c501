import test from 'ava'
import type Dockerode from 'dockerode'
import { reapLeftovers, REAP_CONCURRENCY } from '../../src/runtime/index.ts'
import type { ReapOptions } from '../../src/runtime/index.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'

const ME = 'node-me'

interface Listed { Id: string, Labels: Record<string, string> }
type Removal = (id: string, signal: AbortSignal) => Promise<void>

/** An engine stand-in: lists what it is given (ignoring filters, like a careless engine) and records removals. */
function engine (listed: Listed[] | Error, removal: Removal = async () => {}): { docker: Dockerode, removed: string[], filters: unknown[], maxInFlight: () => number } {
  const removed: string[] = []
  const filters: unknown[] = []
  let inFlight = 0
  let max = 0
  const docker = {
    listContainers: async (opts: { filters: unknown }) => {
      filters.push(opts.filters)
      if (listed instanceof Error) throw listed
      return listed.map((c) => ({ ...c, Names: [`/${c.Id}`], State: 'exited' }))
    },
    getContainer: (id: string) => ({
      remove: async (opts: { abortSignal: AbortSignal }) => {
        inFlight++
        max = Math.max(max, inFlight)
        try {
          await removal(id, opts.abortSignal)
          removed.push(id)
        } finally {
          inFlight--
        }
      }
    })
  }
  return { docker: docker as unknown as Dockerode, removed, filters, maxInFlight: () => max }
}

function opts (docker: Dockerode, extra: Partial<ReapOptions> = {}): ReapOptions {
  return { docker, nodeId: ME, engineTimeoutMs: 5_000, deadline: new AbortController().signal, keep: new Set(), logger: silentLogger(), ...extra }
}

const mine = (id: string): Listed => ({ Id: id, Labels: { 'inframind.node': ME, 'inframind.kind': 'oneshot' } })

test('removes only containers labelled with this node id, and asks the engine for exactly those', async (t) => {
  const e = engine([mine('a'), mine('b'), { Id: 'other', Labels: { 'inframind.node': 'node-other' } }, { Id: 'user', Labels: {} }])
  const result = await reapLeftovers(opts(e.docker))
  t.deepEqual(e.filters, [{ label: [`inframind.node=${ME}`] }])
  t.deepEqual(e.removed.sort(), ['a', 'b'], 'another node\'s container and an unlabelled one stay, even when the engine ignores the filter')
  t.deepEqual(result, { found: 2, removed: 2, left: 0 })
})

test('never removes a container the runtime tracks', async (t) => {
  const e = engine([mine('a'), mine('tracked')])
  const result = await reapLeftovers(opts(e.docker, { keep: new Set(['tracked']) }))
  t.deepEqual(e.removed, ['a'])
  t.deepEqual(result, { found: 1, removed: 1, left: 0 })
})

test('a refused removal is counted as left and does not throw; already gone (404/409) is not left', async (t) => {
  const status = (code: number): Error => Object.assign(new Error(`HTTP ${code}`), { statusCode: code })
  const e = engine([mine('ok'), mine('refused'), mine('gone'), mine('busy')], async (id) => {
    if (id === 'refused') throw status(500)
    if (id === 'gone') throw status(404)
    if (id === 'busy') throw status(409)
  })
  const result = await reapLeftovers(opts(e.docker))
  t.deepEqual(result, { found: 4, removed: 1, left: 1 })
})

test('a list that fails reports nothing found and does not throw', async (t) => {
  const e = engine(new Error('engine down'))
  t.deepEqual(await reapLeftovers(opts(e.docker)), { found: 0, removed: 0, left: 0 })
})

test('removes a few at a time, never all at once', async (t) => {
  const many = Array.from({ length: REAP_CONCURRENCY * 3 }, (_, i) => mine(`c${i}`))
  const e = engine(many, async () => { await new Promise((resolve) => setImmediate(resolve)) })
  const result = await reapLeftovers(opts(e.docker))
  t.is(result.removed, many.length)
  t.true(e.maxInFlight() <= REAP_CONCURRENCY)
})

test('the deadline ends the cleanup: removals not begun are left for the next start', async (t) => {
  const deadline = new AbortController()
  // The first removal hangs until the deadline aborts it, as a hung engine would.
  const e = engine(Array.from({ length: REAP_CONCURRENCY * 2 }, (_, i) => mine(`c${i}`)), async (_id, signal) => {
    await new Promise<void>((resolve, reject) => {
      signal.addEventListener('abort', () => { reject(new Error('aborted')) }, { once: true })
      if (signal.aborted) reject(new Error('aborted'))
    })
  })
  const reap = reapLeftovers(opts(e.docker, { deadline: deadline.signal }))
  deadline.abort()
  const result = await reap
  t.is(result.removed, 0)
  t.is(result.left, REAP_CONCURRENCY * 2)
})
