import test from 'ava'
import { mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { containerYaml, eventually, meshAddr, spawnFor, startFor, text } from '../helpers/node.ts'

// The gateway is a separate process killed with SIGKILL while its job runs on a worker, then
// restarted on the same data dir.

/** Polls an async condition until it holds (60 s at most). */
async function until<T> (fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await fn().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

test('a gateway killed while its job runs on a worker adopts the worker\'s result after a restart; the job runs once', async (t) => {
  t.timeout(240_000)
  const slow = containerYaml('slow', { command: ['sh', '-c', 'sleep 5; cat'], timeout_ms: 60_000 })
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-gateway-'))
  const gatewayOpts = { node: { roles: ['scheduler', 'gateway'] }, containers: [slow], dir }
  const first = await spawnFor(t, { ...gatewayOpts, mesh: {} })
  const worker = await startFor(t, { mesh: { bootstrap: [first.meshAddr] }, containers: [slow] })
  const workerId = worker.node.identity.nodeId

  // Submitted once the gateway knows the worker (before that it answers UNAVAILABLE).
  const jobId = await until(async () => (await first.client.submitJob({ containerId: 'slow', input: text('survives the restart'), deadlineMs: 180_000 })).jobId)
  await until(async () => (await first.client.getJob(jobId)).history.some((h) => h.detail.startsWith(`accepted by ${workerId}`)) || undefined)
  t.log('accepted by the worker; killing the gateway')
  await first.kill()

  // The same gateway (same data dir and identity) comes back and finds its worker.
  const second = await spawnFor(t, { ...gatewayOpts, mesh: { bootstrap: [meshAddr(worker)] } })
  t.is(second.nodeId, first.nodeId)
  t.log('gateway restarted')
  let last = ''
  const done = await until(async () => {
    const job = await second.client.getJob(jobId)
    last = job.history.map((h) => `${h.state} ${h.detail}`).join(' | ')
    return job.state === 'JOB_STATE_RUNNING' || job.state === 'JOB_STATE_PENDING' ? undefined : job
  }, 120_000).catch((err: unknown) => { throw new Error(`${(err as Error).message}; history: ${last}`) })
  t.is(done.state, 'JOB_STATE_SUCCESS', done.error)
  t.is(Buffer.from(done.output).toString(), 'survives the restart')
  t.is(done.workerId, workerId)
  t.true(done.history.some((h) => h.detail.startsWith('resumed after a restart')), done.history.map((h) => h.detail).join(' | '))
  // The worker ran it once: the second assignment was answered with the result it had.
  const onWorker = await eventually(async () => await worker.client.getJob(jobId))
  t.is(onWorker.state, 'JOB_STATE_SUCCESS')
  t.is((await worker.control.getStatus()).jobsServed, 1)
})
