import test, { type ExecutionContext } from 'ava'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startTestNode, type TestNode } from '../helpers/node.ts'

const INFRA = fileURLToPath(new URL('../../bin/infra.js', import.meta.url))

interface Run { code: number, stdout: string, stderr: string }

/** Runs the real `infra` launcher as a user would, in a folder with no config.yaml. */
async function infra (args: string[], opts: { env?: Record<string, string>, cwd?: string, input?: string } = {}): Promise<Run> {
  return await new Promise((resolve) => {
    const child = execFile(process.execPath, [INFRA, ...args], {
      cwd: opts.cwd ?? os.tmpdir(),
      env: { ...process.env, INFRAMIND_CONFIG: '', ...opts.env },
      timeout: 60_000
    }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : (typeof err.code === 'number' ? err.code : 1), stdout, stderr })
    })
    if (opts.input !== undefined) child.stdin?.end(opts.input)
    else child.stdin?.end()
  })
}

async function tempDir (t: ExecutionContext): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'inframind-cli-'))
  t.teardown(async () => await rm(d, { recursive: true, force: true }))
  return d
}

test('init --keygen creates a 0600 key, prints the node id and refuses to overwrite without --force', async (t) => {
  const dir = await tempDir(t)
  const key = path.join(dir, 'keys', 'identity.key')
  const first = await infra(['init', '--keygen', '--key', key])
  t.is(first.code, 0, first.stderr)
  const id = first.stdout.match(/12D3KooW[1-9A-HJ-NP-Za-km-z]+/)?.[0]
  t.truthy(id)
  t.is((await stat(key)).mode & 0o777, 0o600)
  t.is((await stat(path.dirname(key))).mode & 0o777, 0o700)
  const keyBytes = await readFile(key)
  const second = await infra(['init', '--keygen', '--key', key])
  t.is(second.code, 1)
  t.regex(second.stderr, /--force/)
  t.deepEqual(await readFile(key), keyBytes, 'the key is untouched')
  const forced = await infra(['init', '--keygen', '--key', key, '--force'])
  t.is(forced.code, 0)
  t.notDeepEqual(await readFile(key), keyBytes)
  t.false((first.stdout + first.stderr + forced.stdout).includes(keyBytes.toString()), 'the private key is never printed')
})

test('status, submit --wait, job, jobs and verify against a running node', async (t) => {
  const n: TestNode = await startTestNode()
  t.teardown(async () => await n.destroy())
  const env = { INFRAMIND_ADDR: n.node.api.publicAddress(), INFRAMIND_CONTROL: n.node.api.controlAddress() }

  const status = await infra(['status'], { env })
  t.is(status.code, 0, status.stderr)
  for (const label of ['Node ID', 'Jobs Served', 'Avg Latency', 'Uptime', 'CPU', 'RAM', 'Containers']) t.true(status.stdout.includes(label), label)
  t.true(status.stdout.includes(n.node.identity.nodeId))

  const submit = await infra(['submit', '--container', 'echo', '--input', 'from the cli', '--wait', '--json'], { env })
  t.is(submit.code, 0, submit.stderr)
  const job = JSON.parse(submit.stdout)
  t.is(job.state, 'success')
  t.is(job.output, 'from the cli')
  t.truthy(job.receipt.signature)

  const plain = await infra(['submit', '--container', 'echo', '--input-file', '-', '--wait'], { env, input: 'piped input' })
  t.is(plain.code, 0, plain.stderr)
  t.is(plain.stdout, 'piped input\n')

  const dir = await tempDir(t)
  const receiptFile = path.join(dir, 'receipt.json')
  const outputFile = path.join(dir, 'output.bin')
  const receipt = await infra(['job', job.job_id, '--receipt'], { env })
  t.is(receipt.code, 0, receipt.stderr)
  await writeFile(receiptFile, receipt.stdout)
  await writeFile(outputFile, 'from the cli')

  const ok = await infra(['verify', receiptFile, '--output', outputFile])
  t.is(ok.code, 0, ok.stdout + ok.stderr)
  t.regex(ok.stdout, /valid/)

  await writeFile(outputFile, 'from the CLI')
  const wrongOutput = await infra(['verify', receiptFile, '--output', outputFile])
  t.is(wrongOutput.code, 1)

  const env2 = JSON.parse(receipt.stdout)
  const sig = Buffer.from(env2.signature, 'base64')
  sig[5] ^= 0x01
  env2.signature = sig.toString('base64')
  await writeFile(receiptFile, JSON.stringify(env2))
  const tampered = await infra(['verify', receiptFile])
  t.is(tampered.code, 1)
  t.regex(tampered.stdout + tampered.stderr, /invalid/i)

  const fromStdin = await infra(['verify', '-'], { input: JSON.stringify({ receipt: JSON.parse(receipt.stdout) }) })
  t.is(fromStdin.code, 0, fromStdin.stdout + fromStdin.stderr)

  const jobs = await infra(['jobs'], { env })
  t.is(jobs.code, 0)
  t.true(jobs.stdout.includes(job.job_id))

  const show = await infra(['job', job.job_id], { env })
  t.is(show.code, 0)
  t.regex(show.stdout, /success/)

  const unknown = await infra(['submit', '--container', 'nope', '--input', 'x'], { env })
  t.is(unknown.code, 1)
  t.regex(unknown.stderr, /NOT_FOUND/)
})

test('a clear message when the node is not reachable', async (t) => {
  const r = await infra(['status'], { env: { INFRAMIND_CONTROL: '127.0.0.1:1' } })
  t.is(r.code, 1)
  t.regex(r.stderr, /not reachable at 127\.0\.0\.1:1/)
  const s = await infra(['submit', '--container', 'echo', '--input', 'x'], { env: { INFRAMIND_ADDR: '127.0.0.1:1' } })
  t.is(s.code, 1)
  t.regex(s.stderr, /not reachable/)
})

test('usage errors exit 2 with a hint', async (t) => {
  t.is((await infra(['frobnicate'])).code, 2)
  const r = await infra(['submit', '--input', 'x'])
  t.is(r.code, 2)
  t.regex(r.stderr, /--container/)
  // Refused before any node process starts: a devnet keeps a gateway and a worker besides its validators.
  const devnet = await infra(['devnet', '--nodes', '3', '--validators', '2'])
  t.is(devnet.code, 2)
  t.regex(devnet.stderr, /--validators must be an integer from 1 to 1/)
})

test('start refuses a bad config with the file, the key and what is expected', async (t) => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'config.yaml')
  await writeFile(file, 'jobs:\n  concurency: 2\n')
  const r = await infra(['start', '--config', file])
  t.is(r.code, 2)
  t.true(r.stderr.includes(path.join(path.basename(dir), 'config.yaml')), r.stderr)
  t.regex(r.stderr, /jobs\.concurency/)
  t.regex(r.stderr, /concurrency/, 'suggests the known key')
  const viaEnv = await infra(['start'], { env: { INFRAMIND_CONFIG: file } })
  t.is(viaEnv.code, 2)
})
