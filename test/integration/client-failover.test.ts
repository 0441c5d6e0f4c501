import test from 'ava'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { connectControl, type ControlClient } from '../../src/api/client.ts'
import { inframindClient, type ClientJobEvent } from '../../src/client/index.ts'
import { NODE_FILE } from '../../src/types.ts'
import { containerYaml, eventually, spawnFor, text, type NodeProcess } from '../helpers/node.ts'

// Two gateways (scheduler + gateway roles) and one worker, each its own process. A job goes in
// through gateway A with the client library; A is SIGKILLed while the worker runs it; the client
// submits the same job id through gateway B and waits there. One result, and the job ran once.

function control (t: { teardown: (fn: () => void) => void }, p: NodeProcess): ControlClient {
  const info = JSON.parse(readFileSync(path.join(p.dir, NODE_FILE), 'utf8')) as { control: string }
  const c = connectControl(info.control)
  t.teardown(() => c.close())
  return c
}

test('a gateway killed mid-job: the client finishes the job through the other gateway, and the worker runs it once', async (t) => {
  t.timeout(300_000)
  const slow = containerYaml('slow', { command: ['sh', '-c', 'sleep 6; cat'], timeout_ms: 60_000 })
  const gatewayOpts = { node: { roles: ['scheduler', 'gateway'] }, containers: [slow], mesh: {} }
  const a = await spawnFor(t, gatewayOpts)
  const b = await spawnFor(t, gatewayOpts)
  const worker = await spawnFor(t, { node: { roles: ['worker'] }, containers: [slow], mesh: { bootstrap: [a.meshAddr, b.meshAddr] } })
  const workerControl = control(t, worker)
  // Both gateways must see the worker first (else the first answers NO_WORKER and the job would start at B).
  for (const g of [a, b]) {
    const ctl = control(t, g)
    await eventually(async () => (await ctl.listPeers().catch(() => undefined))?.peers.some((p) => p.nodeId === worker.nodeId && p.alive && p.containers.includes('slow')), 90_000)
  }

  const client = inframindClient({ gateways: [a.publicAddr, b.publicAddr], timeoutMs: 5_000 })
  t.teardown(() => client.close())
  const submitted = await client.submit({ containers: ['slow'], input: text('exactly once'), deadlineMs: 180_000 })
  t.is(submitted.gateway, a.publicAddr)
  const jobId = submitted.jobId

  // Wait for the result before the kill, so the stream is open when A dies.
  const events: ClientJobEvent[] = []
  const failovers: string[] = []
  const finished = (async () => {
    for await (const ev of client.watch(jobId, { timeoutMs: 240_000, onFailover: (addr) => failovers.push(addr) })) events.push(ev)
  })()
  // The worker has it (running in its container) before gateway A dies.
  await eventually(async () => (await worker.client.getJob(jobId).catch(() => undefined))?.state === 'JOB_STATE_RUNNING', 60_000)
  t.log('running on the worker; killing gateway A')
  await a.kill()

  await finished
  const last = events.at(-1)
  const done = last?.job
  t.truthy(done, `the watch ends with the finished job; events: ${events.map((e) => `${e.state}@${e.gateway}`).join(', ')}`)
  if (done == null) return
  t.is(done.state, 'JOB_STATE_SUCCESS', `${done.errorCode} ${done.error}; history: ${done.history.map((h) => `${h.state} ${h.detail}`).join(' | ')}`)
  t.is(Buffer.from(done.output).toString(), 'exactly once')
  t.is(done.jobId, jobId)
  t.is(done.workerId, worker.nodeId)
  t.is(last?.gateway, b.publicAddr)
  t.true(failovers.includes(a.publicAddr))
  // Exactly one terminal event reached the client.
  t.is(events.filter((e) => e.job != null).length, 1)
  // B holds the job under the same id.
  t.is((await b.client.getJob(jobId)).state, 'JOB_STATE_SUCCESS')

  // The worker ran it once: one job served, one record of that id, one start in its history.
  const onWorker = await worker.client.getJob(jobId)
  t.is(onWorker.state, 'JOB_STATE_SUCCESS')
  t.is(onWorker.history.filter((h) => h.state === 'JOB_STATE_RUNNING').length, 1, onWorker.history.map((h) => `${h.state} ${h.detail}`).join(' | '))
  t.is((await worker.client.listJobs()).filter((j) => j.jobId === jobId).length, 1)
  t.is((await workerControl.getStatus()).jobsServed, 1)
})
