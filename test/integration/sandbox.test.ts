import test from 'ava'
import Docker from 'dockerode'
import { envelopeFromWire } from '../../src/api/convert.ts'
import { verifyReceipt } from '../../src/receipt/index.ts'
import { containerYaml, startTestNode, text, waitJob, type TestNode } from '../helpers/node.ts'

// Misbehaving jobs go through the whole node (gRPC → queue → runtime → receipt), and after
// each one the node must still serve a normal job and leave no container behind.

let n: TestNode
const docker = new Docker()

const sh = (script: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ command: ['sh', '-c', script], ...extra })

test.before(async () => {
  n = await startTestNode({
    jobs: { concurrency: 2 },
    containers: [
      containerYaml('echo'),
      containerYaml('net', sh('ls /sys/class/net; if nc -w 2 inframind.invalid 80 </dev/null; then echo REACHED; else echo BLOCKED; fi')),
      containerYaml('write-root', sh('echo x > /escape && echo WROTE')),
      containerYaml('write-tmp', sh('echo ok > /tmp/f && cat /tmp/f')),
      // /dev/shm follows the rules of /tmp: 64 MiB (the memory limit is far above it), noexec, and
      // charged to the memory limit (32 MiB here, below the 48 MiB written).
      containerYaml('shm-bound', sh('dd if=/dev/zero of=/dev/shm/f bs=1M count=80 2>/dev/null; echo "dd=$?"; wc -c < /dev/shm/f', { resources: { cpus: 0.5, memory: '256m', pids: 16 } })),
      containerYaml('shm-exec', sh('cp /bin/sh /dev/shm/sh && echo COPIED; if /dev/shm/sh -c true 2>/dev/null; then echo EXECUTED; else echo REFUSED; fi')),
      containerYaml('shm-memory', sh('dd if=/dev/zero of=/dev/shm/f bs=1M count=48 2>/dev/null; wc -c < /dev/shm/f', { resources: { cpus: 0.5, memory: '32m', pids: 16 } })),
      containerYaml('whoami', sh('id -u')),
      containerYaml('forkbomb', sh('f() { f | f & }; f; sleep 30', { timeout_ms: 4000, resources: { cpus: 0.5, memory: '64m', pids: 16 } })),
      containerYaml('memhog', sh('dd if=/dev/zero of=/dev/null bs=256M count=1 && echo SURVIVED', { resources: { cpus: 0.5, memory: '32m', pids: 16 } })),
      containerYaml('loop', sh('while :; do :; done', { timeout_ms: 1500 })),
      containerYaml('flood', sh('yes flood', { max_output_bytes: 4096 })),
      containerYaml('crash', sh('echo "model file missing" >&2; exit 3')),
      containerYaml('stderr-flood', sh('yes "noisy diagnostics" >&2', { timeout_ms: 30_000 }))
    ]
  })
})

test.after.always(async () => {
  await n?.destroy()
})

async function run (containerId: string): Promise<Awaited<ReturnType<typeof waitJob>>> {
  const { jobId } = await n.client.submitJob({ containerId, input: text('') })
  const job = await waitJob(n.client, jobId)
  const verdict = verifyReceipt(envelopeFromWire(job.receipt!), { output: new Uint8Array(job.output) })
  if (!verdict.valid) throw new Error(`receipt for ${containerId} is invalid: ${verdict.reason}`)
  return job
}

async function stillServes (t: { is: (a: unknown, b: unknown, m?: string) => void }, after: string): Promise<void> {
  const { jobId } = await n.client.submitJob({ containerId: 'echo', input: text(`after ${after}`) })
  const job = await waitJob(n.client, jobId)
  t.is(Buffer.from(job.output).toString(), `after ${after}`, `the node serves after ${after}`)
  await n.node.runtime.settled()
  const left = await docker.listContainers({ all: true, filters: { label: [`inframind.job=${job.jobId}`] } })
  t.is(left.length, 0, 'no container left behind')
}

test.serial('no network: only the loopback interface, and a network call fails', async (t) => {
  const job = await run('net')
  t.is(job.state, 'JOB_STATE_SUCCESS')
  t.is(Buffer.from(job.output).toString(), 'lo\nBLOCKED\n')
  await stillServes(t, 'net')
})

test.serial('read-only root: a write to / fails while /tmp works', async (t) => {
  const job = await run('write-root')
  t.is(job.state, 'JOB_STATE_FAILED')
  t.is(job.errorCode, 'CONTAINER_EXIT')
  t.regex(job.error, /read-only/i, 'the stderr tail explains why')
  const tmp = await run('write-tmp')
  t.is(Buffer.from(tmp.output).toString(), 'ok\n')
  await stillServes(t, 'write-root')
})

test.serial('/dev/shm has the rules of /tmp: bounded at 64 MiB, nothing on it runs, and it counts against the memory limit', async (t) => {
  const bound = await run('shm-bound')
  t.is(bound.state, 'JOB_STATE_SUCCESS')
  t.is(Buffer.from(bound.output).toString(), `dd=1\n${64 * 1024 * 1024}\n`, 'the write past 64 MiB fails, and 64 MiB is what is kept')

  const exec = await run('shm-exec')
  t.is(Buffer.from(exec.output).toString(), 'COPIED\nREFUSED\n', 'a binary copied to /dev/shm cannot be run (noexec)')

  // The kernel's answer to a tmpfs write past the memory limit is the OOM killer: the writer (or the
  // whole job) dies before the 48 MiB are in, below the 32 MiB limit.
  const memory = await run('shm-memory')
  t.log(`48 MiB into /dev/shm of a 32 MiB container: ${memory.state} ${memory.errorCode} ${Buffer.from(memory.output).toString().trim()}`)
  if (memory.state === 'JOB_STATE_SUCCESS') {
    const kept = Number(Buffer.from(memory.output).toString().trim())
    t.true(kept > 0 && kept < 32 * 1024 * 1024, `kept ${kept} bytes in /dev/shm`)
  } else {
    t.true(['CONTAINER_OOM', 'CONTAINER_EXIT'].includes(memory.errorCode), memory.errorCode)
  }
  await stillServes(t, 'shm-memory')
})

test.serial('the job process is not root', async (t) => {
  const job = await run('whoami')
  t.is(job.state, 'JOB_STATE_SUCCESS')
  const uid = Number(Buffer.from(job.output).toString().trim())
  t.true(Number.isInteger(uid))
  t.not(uid, 0)
})

test.serial('a fork bomb is contained by the pids limit and ends', async (t) => {
  const job = await run('forkbomb')
  t.is(job.state, 'JOB_STATE_FAILED')
  t.true(['CONTAINER_TIMEOUT', 'CONTAINER_EXIT'].includes(job.errorCode), job.errorCode)
  await stillServes(t, 'forkbomb')
})

test.serial('a memory hog is killed', async (t) => {
  const job = await run('memhog')
  t.is(job.state, 'JOB_STATE_FAILED')
  t.true(['CONTAINER_OOM', 'CONTAINER_EXIT'].includes(job.errorCode), job.errorCode)
  t.false(Buffer.from(job.output).toString().includes('SURVIVED'))
  await stillServes(t, 'memhog')
})

test.serial('an endless loop times out', async (t) => {
  const job = await run('loop')
  t.is(job.state, 'JOB_STATE_FAILED')
  t.is(job.errorCode, 'CONTAINER_TIMEOUT')
  await stillServes(t, 'loop')
})

test.serial('a flood of output is capped', async (t) => {
  const job = await run('flood')
  t.is(job.state, 'JOB_STATE_FAILED')
  t.is(job.errorCode, 'OUTPUT_TOO_LARGE')
  t.true(job.output.byteLength <= 4096)
  await stillServes(t, 'flood')
})

test.serial('a non-zero exit fails the job with the exit code and the stderr tail', async (t) => {
  const job = await run('crash')
  t.is(job.state, 'JOB_STATE_FAILED')
  t.is(job.errorCode, 'CONTAINER_EXIT')
  t.is(job.exitCode, 3)
  t.regex(job.error, /model file missing/)
  await stillServes(t, 'crash')
})

test.serial('a flood of stderr is stopped at its budget instead of running on', async (t) => {
  const started = Date.now()
  const job = await run('stderr-flood')
  t.is(job.state, 'JOB_STATE_FAILED')
  t.is(job.errorCode, 'STDERR_TOO_LARGE')
  t.true(Date.now() - started < 25_000, 'stopped well before its 30 s timeout')
  t.regex(job.error, /noisy diagnostics/, 'the stderr tail is kept')
  await stillServes(t, 'stderr-flood')
})
