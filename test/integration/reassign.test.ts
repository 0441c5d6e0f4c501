import test from 'ava'
import { containerYaml, eventually, meshAddr, spawnFor, startFor, text, waitJob } from '../helpers/node.ts'

// Real nodes (LevelDB, Docker, gRPC, libp2p over 127.0.0.1); the worker that dies is a separate
// process killed with SIGKILL mid-job.

test('a worker killed mid-job: the job is reassigned, finishes on another worker, and one result is delivered', async (t) => {
  // A job that runs long enough to be killed in the middle of.
  const slow = containerYaml('slow', { command: ['sh', '-c', 'sleep 6; cat'], timeout_ms: 60_000 })
  const gateway = await startFor(t, { mesh: {}, node: { roles: ['scheduler', 'gateway'] }, containers: [slow] })
  const doomed = await spawnFor(t, { mesh: { bootstrap: [meshAddr(gateway)] }, containers: [slow] })
  await eventually(() => gateway.node.mesh?.livePeer(doomed.nodeId)?.grpcAddress, 60_000)
  const sent: string[] = []
  gateway.node.scheduler!.on('assigned', (a) => sent.push(a.workerId))

  const { jobId } = await gateway.client.submitJob({ containerId: 'slow', input: text('survives'), deadlineMs: 180_000 })
  await eventually(async () => (await gateway.client.getJob(jobId)).history.some((h) => h.detail === `accepted by ${doomed.nodeId}`) || undefined)
  // A second worker joins while the first runs the job.
  const spare = await startFor(t, { mesh: { bootstrap: [meshAddr(gateway)] }, containers: [slow] })
  const spareId = spare.node.identity.nodeId
  await eventually(() => gateway.node.mesh?.livePeer(spareId)?.grpcAddress)

  const killedAt = Date.now()
  await doomed.kill()
  const done = await waitJob(gateway.client, jobId)
  t.is(done.state, 'JOB_STATE_SUCCESS', done.error)
  t.is(Buffer.from(done.output).toString(), 'survives')
  t.is(done.workerId, spareId, 'the result and its receipt are the second worker\'s')
  t.deepEqual(sent, [doomed.nodeId, spareId])
  const lost = done.history.find((h) => h.detail.startsWith(`worker ${doomed.nodeId} lost`))
  t.truthy(lost, done.history.map((h) => h.detail).join(' | '))
  const reassigned = done.history.find((h) => h.detail === `accepted by ${spareId}`)
  t.truthy(reassigned)
  t.log(`kill → accepted by the second worker: ${(reassigned?.atMs ?? 0) - killedAt} ms`)
  const metrics = await gateway.node.telemetry.metrics.registry.getSingleMetricAsString('inframind_jobs_reassigned_total')
  t.regex(metrics, /inframind_jobs_reassigned_total 1/)
  // The second worker ran it once.
  t.is((await spare.client.getJob(jobId)).state, 'JOB_STATE_SUCCESS')
})
