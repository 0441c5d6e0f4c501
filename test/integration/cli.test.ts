import test, { type ExecutionContext } from 'ava'
import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { containerYaml, startTestNode, type TestNode } from '../helpers/node.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const INFRA = path.join(ROOT, 'bin', 'infra.js')

interface Run { code: number, stdout: string, stderr: string }

/** Runs the real `infra` launcher as a user would, in a folder with no config.yaml. */
async function infra (args: string[], opts: { env?: Record<string, string>, cwd?: string, input?: string, launcher?: string } = {}): Promise<Run> {
  return await new Promise((resolve) => {
    const child = execFile(process.execPath, [opts.launcher ?? INFRA, ...args], {
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

/** A one-shot container that writes a line a second: output that streams while the job runs. */
const CHATTY = containerYaml('chatty', { command: ['sh', '-c', 'for i in 1 2 3; do echo "line $i"; sleep 1; done'], timeout_ms: 30_000 })
const FAILING = containerYaml('failing', { command: ['sh', '-c', 'echo partial; exit 3'] })

test('submit --follow, logs [-f] and the --json of every listing, against a running node', async (t) => {
  const n: TestNode = await startTestNode({ containers: [containerYaml('echo'), CHATTY, FAILING] })
  t.teardown(async () => await n.destroy())
  const env = { INFRAMIND_ADDR: n.node.api.publicAddress(), INFRAMIND_CONTROL: n.node.api.controlAddress() }

  // The output, byte for byte, on stdout; the job's id and events on stderr.
  const followed = await infra(['submit', '--container', 'chatty', '--input', 'x', '--follow'], { env })
  t.is(followed.code, 0, followed.stderr)
  t.is(followed.stdout, 'line 1\nline 2\nline 3\n')
  const id = followed.stderr.match(/^job (\S+)/)?.[1] ?? ''
  t.regex(followed.stderr, /running +step 1\/1: chatty/)
  t.regex(followed.stderr, /success +succeeded/)

  const logs = await infra(['logs', id], { env })
  t.is(logs.code, 0, logs.stderr)
  t.is(logs.stdout, 'line 1\nline 2\nline 3\n')
  t.regex(logs.stderr, /pending +accepted[\s\S]*success/)

  // Following a job that is still running: live chunks, then its end, as JSON lines.
  const running = await infra(['submit', '--container', 'chatty', '--input', 'x'], { env })
  const live = await infra(['logs', '-f', running.stdout.trim(), '--json'], { env })
  t.is(live.code, 0, live.stderr)
  const lines = live.stdout.trim().split('\n').map((l) => JSON.parse(l))
  t.is(lines.filter((l) => l.type === 'output').map((l) => l.text).join(''), 'line 1\nline 2\nline 3\n')
  t.like(lines[lines.length - 1], { type: 'end', state: 'success', complete: true, output_bytes: 21 })
  t.true(lines.some((l) => l.type === 'event' && l.state === 'running'))

  // A failing job: what it wrote, then the failure on stderr and exit 1.
  const failed = await infra(['submit', '--container', 'failing', '--input', 'x', '--follow'], { env })
  t.is(failed.code, 1)
  t.is(failed.stdout, 'partial\n')
  t.regex(failed.stderr, /failed \[/)
  t.is((await infra(['logs', 'no-such-job'], { env })).code, 1)

  const containers = await infra(['containers', '--json'], { env })
  t.is(containers.code, 0, containers.stderr)
  t.deepEqual(JSON.parse(containers.stdout).map((c: { id: string, state: string }) => [c.id, c.state]), [['echo', 'ready'], ['chatty', 'ready'], ['failing', 'ready']])
  const ready = await infra(['containers', '--wait'], { env })
  t.is(ready.code, 0, ready.stderr)
  t.regex(ready.stderr, /3 of 3 containers ready/)
  const jobs = JSON.parse((await infra(['jobs', '--json', '--limit', '10'], { env })).stdout)
  t.true(jobs.some((j: { jobId: string }) => j.jobId === id))
  t.deepEqual(JSON.parse((await infra(['peers', '--json'], { env })).stdout).peers, [])
  // A worker keeps no scores: the node says so, and the CLI passes it on.
  const reputation = await infra(['reputation', '--json'], { env })
  t.is(reputation.code, 1)
  t.regex(reputation.stderr, /FAILED_PRECONDITION/)
})

test('the bundled CLI and the TypeScript source answer alike', async (t) => {
  const dir = await tempDir(t)
  await writeFile(path.join(dir, 'bad.json'), '{"payload_type": 1}')
  for (const args of [['--help'], ['completion', 'bash'], ['sub', 'help'], ['verify', path.join(dir, 'bad.json'), '--json'], ['jobs', '--state', 'x']]) {
    const bundled = await infra(args)
    const source = await infra(args, { env: { INFRAMIND_CLI_BUNDLE: '0' } })
    t.is(bundled.code, source.code, args.join(' '))
    t.is(bundled.stdout, source.stdout, args.join(' '))
    t.is(bundled.stderr, source.stderr, args.join(' '))
  }
})

test('the launcher rebuilds a bundle the source no longer matches, not one that was only touched; a held build falls back to the source', async (t) => {
  // A copy of the package (node_modules shared), so its source can change under the launcher.
  const copy = await tempDir(t)
  for (const entry of ['bin', 'src', 'proto', 'entrypoint.ts', 'package.json', 'package-lock.json']) await cp(path.join(ROOT, entry), path.join(copy, entry), { recursive: true })
  await symlink(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'))
  const launcher = path.join(copy, 'bin', 'infra.js')
  const builds = async (): Promise<string[]> => (await readdir(path.join(copy, '.build', 'cli'))).filter((d) => /^[0-9a-f]{16}$/.test(d))
  const manifest = async (): Promise<{ id: string }> => JSON.parse(await readFile(path.join(copy, '.build', 'cli', 'manifest.json'), 'utf8'))

  const first = await infra(['--help'], { launcher })
  t.is(first.code, 0, first.stderr)
  const built = await manifest()
  t.deepEqual(await builds(), [built.id])

  // Touched (a copy, a checkout): the same contents, so the same build.
  const help = path.join(copy, 'src', 'cli', 'help.ts')
  await utimes(help, new Date(), new Date(Date.now() + 5000))
  t.is((await infra(['--help'], { launcher })).code, 0)
  t.is((await manifest()).id, built.id)

  // Changed: the next run rebuilds and runs the new code.
  await writeFile(help, (await readFile(help, 'utf8')).replace('shell completion: eval', 'marker-one: shell completion: eval'))
  const changed = await infra(['--help'], { launcher })
  t.regex(changed.stdout, /marker-one/)
  t.not((await manifest()).id, built.id)

  // Another run is rebuilding (its lock is fresh): this one runs the source meanwhile, with the change.
  await writeFile(help, (await readFile(help, 'utf8')).replace('marker-one', 'marker-two'))
  await mkdir(path.join(copy, '.build', 'cli'), { recursive: true })
  await writeFile(path.join(copy, '.build', 'cli', '.lock'), '')
  const held = await infra(['--help'], { launcher })
  t.is(held.code, 0, held.stderr)
  t.regex(held.stdout, /marker-two/)
  t.false((await stat(path.join(copy, '.build', 'cli', 'manifest.json'))).mtimeMs > (await stat(path.join(copy, '.build', 'cli', '.lock'))).mtimeMs, 'no build ran')
})
