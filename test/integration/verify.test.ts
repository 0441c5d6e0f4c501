import test from 'ava'
import * as grpc from '@grpc/grpc-js'
import { envelopeFromWire } from '../../src/api/convert.ts'
import { rankValidators, validationJobId, verifyCertificate } from '../../src/verification/index.ts'
import { computeJobHash, sha256, verifyReceipt } from '../../src/receipt/index.ts'
import { decodeCertificate, type Certificate } from '../../src/protocol/index.ts'
import { EXCLUSION_BASE_MS } from '../../src/scheduler/index.ts'
import { containerYaml, eventually, meshAddr, NLP_IMAGE, spawnFor, startFor, startTestNode, text, waitJob, type TestNode } from '../helpers/node.ts'

// Real nodes (LevelDB, Docker, gRPC, libp2p over 127.0.0.1): a scheduler+gateway, workers and
// validators of one private mesh. Whole meshes per test, one test at a time.

const echo = containerYaml('echo', { deterministic: true })

function certificateOf (job: { certificate: Parameters<typeof envelopeFromWire>[0] | null }): Certificate {
  return decodeCertificate(envelopeFromWire(job.certificate!).payload)
}

async function mesh (t: Parameters<typeof startFor>[0], opts: { workers?: Array<Record<string, unknown>>, validators: number }): Promise<{ gateway: TestNode, workers: TestNode[], validators: TestNode[] }> {
  const gateway = await startFor(t, { mesh: {}, node: { roles: ['scheduler', 'gateway'] }, containers: [echo] })
  const join = { bootstrap: [meshAddr(gateway)] }
  const workers = await Promise.all((opts.workers ?? [echo]).map(async (c) => await startFor(t, { mesh: join, containers: [c] })))
  const validators = await Promise.all(Array.from({ length: opts.validators }, async () => await startFor(t, { mesh: join, node: { roles: ['validator'] }, containers: [echo] })))
  for (const n of [...workers, ...validators]) await eventually(() => gateway.node.mesh?.livePeer(n.node.identity.nodeId)?.grpcAddress, 60_000)
  return { gateway, workers, validators }
}

test.serial('reexecute v=2 q=2: the result comes with a certificate that verifies offline, signed by both chosen validators', async (t) => {
  const { gateway, workers, validators } = await mesh(t, { validators: 2 })
  const job = await gateway.client.runJob({ containerId: 'echo', input: text('check me'), deadlineMs: 120_000, verification: { method: 'reexecute', validators: 2, quorum: 2 } }, { timeoutMs: 120_000 + 30_000 })
  t.is(job.state, 'JOB_STATE_SUCCESS', job.error)
  t.is(job.verificationState, 'certified', job.verificationReason)
  t.deepEqual(job.verification, { method: 'reexecute', validators: 2, quorum: 2 })
  t.is(job.workerId, workers[0]!.node.identity.nodeId)
  t.truthy(job.certificate)
  const cert = envelopeFromWire(job.certificate!)
  const checked = verifyCertificate(cert, { output: job.output })
  t.true(checked.valid, checked.valid ? '' : `${checked.code}: ${checked.reason}`)
  if (checked.valid) {
    t.deepEqual(checked.attestations.map((a) => a.validatorId).sort(), validators.map((v) => v.node.identity.nodeId).sort())
    t.is(checked.certificate.schedulerId, gateway.node.identity.nodeId)
  }
  // Counted apart from client jobs on the validators, and by outcome at the scheduler.
  for (const v of validators) {
    t.regex(await v.node.telemetry.metrics.registry.getSingleMetricAsString('inframind_reexecutions_total'), /inframind_reexecutions_total\{verdict="agree"\} 1/)
  }
  t.regex(await gateway.node.telemetry.metrics.registry.getSingleMetricAsString('inframind_verifications_total'), /inframind_verifications_total\{state="certified"\} 1/)
  // The validators ran it under their own ids and hold no job of the client's id.
  for (const v of validators) {
    const err = await t.throwsAsync(v.client.getJob(job.jobId))
    t.is((err as grpc.ServiceError).code, grpc.status.NOT_FOUND)
  }

  // Method signature: the same validators check the receipt (its signer, the job hash, each step's
  // image against their own pins) without running the job again.
  const signed = await gateway.client.runJob({ containerId: 'echo', input: text('just check the receipt'), deadlineMs: 60_000, verification: { method: 'signature', validators: 2, quorum: 2 } }, { timeoutMs: 60_000 + 30_000 })
  t.is(signed.verificationState, 'certified', signed.verificationReason)
  const bySignature = verifyCertificate(envelopeFromWire(signed.certificate!), { output: signed.output })
  t.true(bySignature.valid, bySignature.valid ? '' : `${bySignature.code}: ${bySignature.reason}`)
  if (bySignature.valid) t.deepEqual(bySignature.attestations.map((a) => a.method), ['signature', 'signature'])
  for (const v of validators) {
    const metrics = await v.node.telemetry.metrics.registry.metrics()
    t.regex(metrics, /inframind_receipt_checks_total\{verdict="agree"\} 1/)
    t.regex(metrics, /inframind_reexecutions_total\{verdict="agree"\} 1\n/, 'no second re-execution')
  }
})

test.serial('a worker that alters the output is caught: its result is disputed and the validator output certified instead, the cheat is excluded', async (t) => {
  // Same image and digest (so it passes the gateway's pin check), another command: a lazy or tampering worker.
  const cheat = containerYaml('echo', { deterministic: true, command: ['sh', '-c', 'cat; echo tampered'] })
  const { gateway, workers } = await mesh(t, { workers: [cheat, echo], validators: 3 })
  const cheatId = workers[0]!.node.identity.nodeId
  const honestId = workers[1]!.node.identity.nodeId
  const jobs = []
  // Workers take turns, so the cheat gets one of the first jobs; after its first lost dispute it gets none.
  for (let i = 0; i < 4; i++) {
    jobs.push(await gateway.client.runJob({ containerId: 'echo', input: text(`truth ${i}`), deadlineMs: 120_000, verification: { method: 'reexecute', validators: 1, quorum: 1 } }, { timeoutMs: 120_000 + 30_000 }))
  }
  for (const [i, job] of jobs.entries()) {
    t.is(job.state, 'JOB_STATE_SUCCESS', job.error)
    t.is(Buffer.from(job.output).toString(), `truth ${i}`, 'the client only ever gets the honest output')
    t.is(job.verificationState, 'certified', job.verificationReason)
    t.not(job.workerId, cheatId)
    const checked = verifyCertificate(envelopeFromWire(job.certificate!), { output: job.output })
    t.true(checked.valid)
  }
  const disputed = jobs.filter((j) => j.verificationReason.includes('disputed result'))
  t.is(disputed.length, 1, 'exactly one job met the cheat before it was excluded')
  // With q = 1 the validator that re-ran it to another output is the quorum: its output is the result.
  t.regex(disputed[0]!.verificationReason, new RegExp(`the validators' output, after 1 disputed result\\(s\\) from ${cheatId}`))
  t.is(certificateOf(disputed[0]!).resolution, 'validators_output')
  const rep = gateway.node.scheduler!.reputation()
  const cheatRecord = rep.find((r) => r.nodeId === cheatId)
  t.is(cheatRecord?.disputesLost, 1)
  t.true((cheatRecord?.excludedUntilMs ?? 0) > Date.now())
  t.is(rep.find((r) => r.nodeId === honestId)?.disputesLost ?? 0, 0)
})

test.serial('with only a cheating worker, the output both validators re-ran to is certified instead; the dispute record reaches another scheduler', async (t) => {
  const cheat = containerYaml('echo', { deterministic: true, command: ['sh', '-c', 'cat; echo tampered'] })
  const { gateway, workers, validators } = await mesh(t, { workers: [cheat], validators: 2 })
  // Another scheduler on the mesh, which never assigned anything to the cheat.
  const other = await startFor(t, { mesh: { bootstrap: [meshAddr(gateway)] }, node: { roles: ['scheduler', 'gateway'] }, containers: [echo] })
  const cheatId = workers[0]!.node.identity.nodeId
  const job = await gateway.client.runJob({ containerId: 'echo', input: text('the truth'), deadlineMs: 120_000, verification: { method: 'reexecute', validators: 2, quorum: 2 } }, { timeoutMs: 120_000 + 30_000 })
  t.is(job.state, 'JOB_STATE_SUCCESS', job.error)
  t.is(Buffer.from(job.output).toString(), 'the truth', 'the validators\' output, never the cheat\'s')
  t.is(job.verificationState, 'certified', job.verificationReason)
  t.regex(job.verificationReason, new RegExp(`disputed result\\(s\\) from ${cheatId}`))
  const validatorIds = validators.map((v) => v.node.identity.nodeId)
  t.true(validatorIds.includes(job.workerId), 'the result is a validator\'s re-execution')
  const checked = verifyCertificate(envelopeFromWire(job.certificate!), { output: job.output })
  t.true(checked.valid, checked.valid ? '' : `${checked.code}: ${checked.reason}`)
  if (checked.valid) {
    t.is(checked.certificate.resolution, 'validators_output')
    t.is(checked.receipt.workerId, cheatId, 'the disputed receipt is the evidence inside')
    t.deepEqual(checked.attestations.map((a) => a.validatorId).sort(), [...validatorIds].sort())
  }
  // The receipt that comes with the result is the validator's own, for the output the client got.
  const receipt = verifyReceipt(envelopeFromWire(job.receipt!), { output: job.output })
  t.true(receipt.valid)

  // The signed dispute record is stored here and reaches the other scheduler, which checks the
  // evidence (the cheat's receipt, both validators' disagreements) and counts it as its own.
  const stored = await gateway.node.store.listDisputes()
  t.is(stored.length, 1)
  t.regex(await gateway.node.telemetry.metrics.registry.getSingleMetricAsString('inframind_disputes_total'), /resolution="validators_output"\} 1/)
  const heard = await eventually(() => other.node.scheduler!.reputation().find((r) => r.nodeId === cheatId), 30_000)
  t.is(heard.disputesLost, 1)
  t.true(heard.excludedUntilMs > Date.now())
  t.is((await other.node.store.listDisputes()).length, 1)
})

test.serial('validators that disagree with the worker and with each other: the job fails DISPUTED and no output is returned', async (t) => {
  const cheat = containerYaml('echo', { deterministic: true, command: ['sh', '-c', 'cat; echo tampered'] })
  const liar = containerYaml('echo', { deterministic: true, command: ['sh', '-c', 'cat; echo invented'] })
  const gateway = await startFor(t, { mesh: {}, node: { roles: ['scheduler', 'gateway'] }, containers: [echo] })
  const join = { bootstrap: [meshAddr(gateway)] }
  const worker = await startFor(t, { mesh: join, containers: [cheat] })
  const validators = await Promise.all([echo, liar].map(async (c) => await startFor(t, { mesh: join, node: { roles: ['validator'] }, containers: [c] })))
  for (const n of [worker, ...validators]) await eventually(() => gateway.node.mesh?.livePeer(n.node.identity.nodeId)?.grpcAddress, 60_000)
  const job = await gateway.client.runJob({ containerId: 'echo', input: text('who knows'), deadlineMs: 120_000, verification: { method: 'reexecute', validators: 2, quorum: 2 } }, { timeoutMs: 120_000 + 30_000 })
  t.is(job.state, 'JOB_STATE_FAILED')
  t.is(job.errorCode, 'DISPUTED')
  t.is(job.verificationState, 'disputed')
  t.regex(job.verificationReason, new RegExp(`another output than worker ${worker.node.identity.nodeId}`))
  t.is(job.output.byteLength, 0)
  t.is(job.certificate, null)
  t.regex(await gateway.node.telemetry.metrics.registry.getSingleMetricAsString('inframind_disputes_total'), /resolution="rerun"\} 1/)
})

test.serial('a worker that maps the container to another image (pinned by itself) is caught by its own receipt, excluded, and the job runs elsewhere', async (t) => {
  // Its own config pins the other image, so its own checks pass; its receipt names that image.
  const swapped = containerYaml('echo', { image: NLP_IMAGE, command: ['sentiment'], deterministic: true, output_schema: 'json' })
  const { gateway, workers } = await mesh(t, { workers: [swapped, echo], validators: 1 })
  const cheatId = workers[0]!.node.identity.nodeId
  const jobs = []
  for (let i = 0; i < 3; i++) {
    jobs.push(await gateway.client.runJob({ containerId: 'echo', input: text(`as is ${i}`), deadlineMs: 120_000, verification: { method: 'signature', validators: 1, quorum: 1 } }, { timeoutMs: 120_000 + 30_000 }))
  }
  for (const [i, job] of jobs.entries()) {
    t.is(job.state, 'JOB_STATE_SUCCESS', job.error)
    t.is(Buffer.from(job.output).toString(), `as is ${i}`)
    t.is(job.workerId, workers[1]!.node.identity.nodeId)
    t.is(job.verificationState, 'certified', job.verificationReason)
  }
  const caught = jobs.filter((j) => j.history.some((h) => h.detail.startsWith('REMOTE_IMAGE_MISMATCH')))
  t.is(caught.length, 1, 'the first job that met it; none after')
  const record = gateway.node.scheduler!.reputation().find((r) => r.nodeId === cheatId)
  t.is(record?.disputesLost, 1)
  t.is(record?.successes, 0, 'the success counted on arrival was taken back')
  t.true((record?.excludedUntilMs ?? 0) > Date.now())
})

test.serial('too few validators: the result stands, marked incomplete with the reason; non-deterministic containers are refused', async (t) => {
  const { gateway } = await mesh(t, { validators: 1 })
  const job = await gateway.client.runJob({ containerId: 'echo', input: text('alone'), deadlineMs: 60_000, verification: { method: 'reexecute', validators: 2, quorum: 2 } }, { timeoutMs: 60_000 + 30_000 })
  t.is(job.state, 'JOB_STATE_SUCCESS')
  t.is(Buffer.from(job.output).toString(), 'alone')
  t.is(job.verificationState, 'incomplete')
  t.regex(job.verificationReason, /1 live validator\(s\) serve echo; the policy needs 2/)
  t.is(job.certificate, null)

  const policy = { method: 'reexecute' as const, validators: 9, quorum: 1 }
  const tooMany = await t.throwsAsync(gateway.client.submitJob({ containerId: 'echo', input: text('x'), verification: policy }))
  t.is((tooMany as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT)
  t.regex((tooMany as grpc.ServiceError).details, /at most 5/)
  const unknown = await t.throwsAsync(gateway.client.submitJob({ containerId: 'echo', input: text('x'), verification: { method: 'proof' as 'none' } }))
  t.is((unknown as grpc.ServiceError).code, grpc.status.INVALID_ARGUMENT)
  t.regex((unknown as grpc.ServiceError).details, /must be one of none, signature, reexecute/)
})

test.serial('re-execution of a container that does not declare deterministic: true is FAILED_PRECONDITION naming it', async (t) => {
  const gateway = await startFor(t, { mesh: {}, node: { roles: ['scheduler', 'gateway'] }, containers: [containerYaml('echo')] })
  const worker = await startFor(t, { mesh: { bootstrap: [meshAddr(gateway)] }, containers: [containerYaml('echo')] })
  await eventually(() => gateway.node.mesh?.livePeer(worker.node.identity.nodeId)?.grpcAddress, 60_000)
  const err = await t.throwsAsync(gateway.client.submitJob({ containerId: 'echo', input: text('x'), verification: { method: 'reexecute' } }))
  t.is((err as grpc.ServiceError).code, grpc.status.FAILED_PRECONDITION)
  t.regex((err as grpc.ServiceError).details, /"echo" is not \(deterministic: false/)
  // Unverified jobs still run.
  t.is((await gateway.client.runJob({ containerId: 'echo', input: text('fine') })).state, 'JOB_STATE_SUCCESS')
})

test.serial('a validator killed mid re-execution is replaced by the next in rank, and the job is still certified', async (t) => {
  // Long enough to kill a validator in the middle of its re-run.
  const slow = containerYaml('slow', { deterministic: true, command: ['sh', '-c', 'sleep 3; cat'], timeout_ms: 30_000 })
  const gateway = await startFor(t, { mesh: {}, node: { roles: ['scheduler', 'gateway'] }, containers: [slow] })
  const join = { bootstrap: [meshAddr(gateway)] }
  const worker = await startFor(t, { mesh: join, containers: [slow] })
  const validators = await Promise.all([0, 1, 2].map(async () => await spawnFor(t, { mesh: join, node: { roles: ['validator'] }, containers: [slow] })))
  for (const id of [worker.node.identity.nodeId, ...validators.map((v) => v.nodeId)]) await eventually(() => gateway.node.mesh?.livePeer(id)?.grpcAddress, 60_000)

  const input = text('still certified')
  const { jobId } = await gateway.client.submitJob({ containerId: 'slow', input, deadlineMs: 120_000, verification: { method: 'reexecute', validators: 2, quorum: 2 } })
  // Validators start re-running it as soon as the worker has it; the first in rank is killed then.
  const workerId = await eventually(async () => (await gateway.client.getJob(jobId)).history.some((h) => h.detail.startsWith('accepted by ')) ? worker.node.identity.nodeId : undefined, 60_000)
  const ranked = rankValidators(computeJobHash(jobId, ['slow'], sha256(input)), validators.map((v) => v.nodeId), workerId)
  const first = ranked[0]!
  const victim = validators.find((v) => v.nodeId === first)!
  // Once its early re-execution's container runs.
  await eventually(async () => (await victim.client.getJob(validationJobId(computeJobHash(jobId, ['slow'], sha256(input)))).catch(() => undefined))?.state === 'JOB_STATE_RUNNING' || undefined, 60_000)
  await victim.kill()

  const done = await waitJob(gateway.client, jobId)
  t.is(done.state, 'JOB_STATE_SUCCESS', done.error)
  t.is(done.verificationState, 'certified', done.verificationReason)
  const checked = verifyCertificate(envelopeFromWire(done.certificate!), { output: done.output })
  t.true(checked.valid)
  if (checked.valid) {
    // The next in rank stands in for the killed one: asked after it failed to answer (chosen lists all
    // three), or from the start when its heartbeats had already stopped (chosen lists the other two).
    t.true(checked.attestations.some((a) => a.validatorId === ranked[2]), 'the next in rank attested')
    t.deepEqual(checked.certificate.chosen, checked.certificate.chosen.length === 3 ? ranked : ranked.slice(1))
    t.false(checked.attestations.some((a) => a.validatorId === first), 'the killed validator did not attest')
    t.deepEqual(checked.attestations.map((a) => a.validatorId).sort(), validators.map((v) => v.nodeId).filter((id) => id !== first).sort())
  }
})

// A run of 120 verified jobs with one cheating worker among three, in waves of 4, one test each,
// so the run reports progress (ava stops a test file that reports nothing for 2 minutes); the mesh is
// shared by these tests and stopped after the last.
const run: { nodes: TestNode[], gateway?: TestNode, cheatId: string, jobs: Array<{ input: string, job: Awaited<ReturnType<TestNode['client']['runJob']>> }> } = { nodes: [], cheatId: '', jobs: [] }
const WAVES = 30
const PER_WAVE = 4

test.after.always(async () => { await Promise.all(run.nodes.map(async (n) => await n.destroy())) })

test.serial('cheat run: a mesh of a gateway, three workers (one cheating) and four validators', async (t) => {
  // 120 jobs of 3 runs each on a shared machine: a container start may take seconds when it is busy.
  // The run is about catching the cheat, so a slow start must not fail a job by the container's timeout.
  const patient = { deterministic: true, timeout_ms: 60_000 }
  const echo = containerYaml('echo', patient)
  const cheat = containerYaml('echo', { ...patient, command: ['sh', '-c', 'cat; echo tampered'] })
  const start = async (opts: Parameters<typeof startTestNode>[0]): Promise<TestNode> => {
    const n = await startTestNode(opts)
    run.nodes.push(n)
    return n
  }
  // Eight nodes share this test's one event loop for 120 jobs: on a machine whose cores are all busy
  // a heartbeat can be seconds late, and a validator taken for lost mid-run is not what this tests.
  const slowBeats = { heartbeat_interval_ms: 5_000 }
  const gateway = await start({ mesh: slowBeats, node: { roles: ['scheduler', 'gateway'] }, containers: [echo] })
  const join = { ...slowBeats, bootstrap: [meshAddr(gateway)] }
  const workers = await Promise.all([cheat, echo, echo].map(async (c) => await start({ mesh: join, containers: [c] })))
  // Four: a disputed job runs again checked by validators that did not judge the disputed result.
  const validators = await Promise.all([0, 1, 2, 3].map(async () => await start({ mesh: join, node: { roles: ['validator'] }, containers: [echo] })))
  for (const n of [...workers, ...validators]) await eventually(() => gateway.node.mesh?.livePeer(n.node.identity.nodeId)?.grpcAddress, 60_000)
  run.gateway = gateway
  run.cheatId = workers[0]!.node.identity.nodeId
  t.pass()
})

for (let wave = 0; wave < WAVES; wave++) {
  test.serial(`cheat run: wave ${wave + 1} of ${WAVES}, ${PER_WAVE} verified jobs at once, every one certified with the honest output`, async (t) => {
    const gateway = run.gateway
    if (gateway === undefined) return t.fail('the mesh did not start')
    const jobs = await Promise.all(Array.from({ length: PER_WAVE }, async (_, i) => {
      const input = `job ${wave}-${i}`
      const job = await gateway.client.runJob({ containerId: 'echo', input: text(input), deadlineMs: 180_000, verification: { method: 'reexecute', validators: 2, quorum: 2 } }, { timeoutMs: 180_000 + 30_000 })
      return { input, job }
    }))
    run.jobs.push(...jobs)
    for (const { input, job } of jobs) {
      t.is(job.state, 'JOB_STATE_SUCCESS', `${input}: ${job.error}`)
      t.is(Buffer.from(job.output).toString(), input, 'no client ever gets the cheat\'s output')
      t.is(job.verificationState, 'certified', job.verificationReason)
      t.not(job.workerId, run.cheatId, 'every certified result is an honest worker\'s')
    }
  })
}

test.serial('cheat run: every result of the cheat was disputed, it got no job once excluded, honest nodes lost none', async (t) => {
  const gateway = run.gateway
  if (gateway === undefined) return t.fail('the mesh did not start')
  t.is(run.jobs.length, WAVES * PER_WAVE)
  const rep = gateway.node.scheduler!.reputation()
  const cheat = rep.find((r) => r.nodeId === run.cheatId)
  // Jobs it had taken before its first dispute was settled may all be disputed; none after.
  const excludedAt = (cheat?.excludedUntilMs ?? 0) - EXCLUSION_BASE_MS
  const accepted = run.jobs.flatMap(({ job }) => job.history.filter((h) => h.detail.startsWith(`accepted by ${run.cheatId}`)).map((h) => ({ job, atMs: h.atMs })))
  t.true(accepted.length >= 1, 'the cheat was given work before it was caught')
  t.is(cheat?.exclusions, 1)
  t.true(excludedAt > 0)
  for (const a of accepted) t.true(a.atMs <= excludedAt, `the cheat took ${a.job.jobId} ${a.atMs - excludedAt} ms after its exclusion`)
  for (const { job } of accepted) t.regex(job.verificationReason, new RegExp(`disputed result\\(s\\) from ${run.cheatId}`))
  t.is(cheat?.disputesLost, accepted.length, 'every result of the cheat was disputed')
  t.log(`the cheat ran ${accepted.length} of ${run.jobs.length} jobs before its exclusion; every one was disputed`)
  for (const r of rep.filter((x) => x.nodeId !== run.cheatId)) t.is(r.disputesLost, 0, `honest ${r.nodeId} lost a dispute`)
  t.true(rep.filter((r) => r.nodeId !== run.cheatId).reduce((n, r) => n + r.successes, 0) >= 100, 'at least 100 honest results')
  t.regex(await gateway.node.telemetry.metrics.registry.getSingleMetricAsString('inframind_verifications_total'), new RegExp(`state="certified"\\} ${WAVES * PER_WAVE}`))
})
