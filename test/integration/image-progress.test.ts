import test from 'ava'
import { execFile, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { formatBytes } from '../../src/cli/format.ts'
import { containerYaml, startFor, ECHO_IMAGE } from '../helpers/node.ts'

// Byte progress of an image download, end to end: a real node (real engine, real gRPC) fetches an
// image tar from an HTTP server on 127.0.0.1 that sends it in parts; ListContainers (and `infra
// containers --wait`) must show the containers `pulling` with the bytes received so far against the
// tar's size, before they are ready. Between parts the server waits until the test has seen the bytes
// sent so far, so every part is observed however busy the machine is: the test asserts the sequence of
// values, never a timing.

const run = promisify(execFile)
const INFRA = fileURLToPath(new URL('../../bin/infra.js', import.meta.url))
const NONCE = randomBytes(4).toString('hex')
const TAG = `inframind-test/progress-${NONCE}:1`
/** The tar is sent in this many parts, with a wait for the test's observation between them. */
const PARTS = 4
/** Within a part: chunks of this size with a small pause after each (a slow link). */
const CHUNK = 16 * 1024

interface Seen { id: string, state: string, done: number, total: number }

test('a tar download shows as pulling with growing bytes of the tar\'s size, in ListContainers and the CLI, until the containers are ready', async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'inframind-progress-'))
  t.teardown(async () => { await rm(work, { recursive: true, force: true }) })

  // The sample echo image under a new name and a nonce label: a new image id the engine does not
  // hold once the tag is removed (the echo layers stay: the echo image still uses them).
  const dockerfile = `FROM ${ECHO_IMAGE}\nLABEL inframind.test.nonce=${NONCE}\n`
  const built = spawn('docker', ['build', '-q', '-t', TAG, '-'], { stdio: ['pipe', 'pipe', 'pipe'] })
  built.stdin.end(dockerfile)
  let builtOut = ''
  built.stdout.on('data', (d: Buffer) => { builtOut += String(d) })
  await new Promise<void>((resolve, reject) => { built.on('close', (code) => { code === 0 ? resolve() : reject(new Error(`docker build exited ${code}`)) }) })
  const id = builtOut.trim().split('\n').pop() ?? ''
  t.regex(id, /^sha256:[0-9a-f]{64}$/)
  t.teardown(async () => { await run('docker', ['rmi', '-f', id]).catch(() => {}) })
  const tarPath = join(work, 'image.tar')
  await run('docker', ['save', '-o', tarPath, TAG])
  await run('docker', ['rmi', TAG])
  await t.throwsAsync(run('docker', ['image', 'inspect', id]), undefined, 'the engine no longer holds the image: the node must fetch it')
  const tar = await readFile(tarPath)
  const sha256 = createHash('sha256').update(tar).digest('hex')
  const size = tar.length
  const gates = Array.from({ length: PARTS - 1 }, (_, i) => Math.floor(size * (i + 1) / PARTS))

  // The slow server: each part in small chunks, then a wait until the test has seen its bytes.
  let requests = 0
  let sent = 0
  let atGate: number | undefined
  let releaseGate: (() => void) | undefined
  const server = createServer((req, res) => {
    if (req.url !== '/image.tar') { res.writeHead(404).end(); return }
    requests++
    res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': size })
    void (async () => {
      for (const end of [...gates, size]) {
        while (sent < end) {
          const piece = tar.subarray(sent, Math.min(sent + CHUNK, end))
          sent += piece.length
          if (!res.write(piece)) await new Promise((resolve) => res.once('drain', resolve))
          await new Promise((resolve) => setTimeout(resolve, 2))
        }
        if (end < size) {
          atGate = end
          await new Promise<void>((resolve) => { releaseGate = resolve })
          atGate = undefined
        }
      }
      res.end()
    })().catch(() => { res.destroy() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    releaseGate?.()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/image.tar`

  // Two containers on the image: a one-shot (fetched by the node's prefetch) and a service (whose
  // monitor asks for the image itself): one download serves both.
  const source = { url, sha256 }
  const n = await startFor(t, {
    runtime: { prefetch: true, pull_timeout_ms: 120_000 },
    containers: [
      containerYaml('fetched', { image: TAG, digest: id, source }),
      containerYaml('served', {
        image: TAG,
        digest: id,
        source,
        mode: 'service',
        command: ['sh', '-c', 'mkdir -p /tmp/www && echo ok > /tmp/www/health && exec httpd -f -p 8080 -h /tmp/www'],
        service: { port: 8080, path: '/', health_path: '/health', startup_timeout_ms: 20_000, health_interval_ms: 500 }
      })
    ]
  })

  // `infra containers --wait` as an operator would run it, its stderr a pipe (plain lines).
  const cli = spawn(process.execPath, [INFRA, 'containers', '--wait', '--wait-timeout', '110000'], {
    cwd: work,
    env: { ...process.env, INFRAMIND_CONFIG: '', INFRAMIND_CONTROL: n.node.api.controlAddress() },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (cli.exitCode === null) cli.kill('SIGKILL') })
  let cliErr = ''
  cli.stderr.on('data', (d: Buffer) => { cliErr += String(d) })
  const cliDone = new Promise<number | null>((resolve) => { cli.on('close', resolve) })
  const cliSawBytes = (): boolean => /container fetched: pulling \S+ \S+ of /.test(cliErr)

  const seen: Seen[] = []
  const last = new Map<string, string>()
  const deadline = Date.now() + 110_000
  for (;;) {
    const list = await n.control.listContainers({ timeoutMs: 10_000 })
    for (const c of list) {
      const entry = { id: c.id, state: c.state, done: c.pullDoneBytes, total: c.pullTotalBytes }
      const key = JSON.stringify(entry)
      if (last.get(c.id) !== key) { last.set(c.id, key); seen.push(entry) }
    }
    const now = new Map(list.map((c) => [c.id, c]))
    // Both containers (the one-shot through the cache, the service through its own ensure) show the part.
    if (atGate !== undefined && ['fetched', 'served'].every((i) => now.get(i)?.state === 'pulling' && now.get(i)?.pullDoneBytes === atGate) &&
      (atGate !== gates[0] || cliSawBytes())) {
      releaseGate?.()
    }
    if (now.get('fetched')?.state === 'ready' && now.get('served')?.state === 'healthy') break
    if (['fetched', 'served'].some((i) => ['failed', 'stopped'].includes(now.get(i)?.state ?? ''))) break
    if (Date.now() > deadline) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  t.is(requests, 1, 'one download for both containers')
  for (const cid of ['fetched', 'served']) {
    const mine = seen.filter((s) => s.id === cid)
    const readyAt = mine.findIndex((s) => s.state === (cid === 'fetched' ? 'ready' : 'healthy'))
    t.true(readyAt > 0, `${cid} became ready: ${JSON.stringify(mine)}`)
    const before = mine.slice(0, readyAt)
    const pulled = before.filter((s) => s.state === 'pulling' && (s.done > 0 || s.total > 0))
    // Every part the server paused after was seen, in order, against the tar's size.
    t.deepEqual(pulled.map((s) => s.total), pulled.map(() => size), `${cid}: totalBytes is the tar's size`)
    const done = pulled.map((s) => s.done)
    t.deepEqual(done, [...done].sort((a, b) => a - b), `${cid}: doneBytes never goes back: ${done.join(', ')}`)
    for (const gate of gates) t.true(done.includes(gate), `${cid}: the bytes at each pause (${gate}) were reported: ${done.join(', ')}`)
    t.true(done.every((d) => d <= size))
    // Bytes only while pulling: no other state carries them.
    t.true(mine.filter((s) => s.state !== 'pulling').every((s) => s.done === 0 && s.total === 0), JSON.stringify(mine))
    t.true(mine.slice(readyAt).every((s) => s.state !== 'pulling'), `${cid}: no pulling after ready`)
  }

  // The CLI drew the download off a TTY as plain lines with the bytes, then said everything is ready.
  t.is(await cliDone, 0, cliErr)
  const cliLines = cliErr.split('\n').filter((l) => l.startsWith('container fetched: pulling '))
  t.true(cliLines.length >= 1, cliErr)
  for (const line of cliLines) t.true(line.endsWith(` of ${formatBytes(size)} (${/\((\d+)%\)$/.exec(line)?.[1] ?? 'x'}%)`), line)
  t.regex(cliErr, /2 of 2 containers ready/)
})
