import { existsSync } from 'node:fs'
import { request } from 'node:http'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import Dockerode from 'dockerode'
import { dockerRuntime } from '../../src/runtime/index.ts'
import { engineOf } from '../../src/runtime/docker.ts'
import type { Runtime, RunResult } from '../../src/runtime/index.ts'
import type { ContainerConfig } from '../../src/config/types.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { ECHO_IMAGE, NLP_IMAGE, lockedDigest, shContainer, testContainer } from '../helpers/images.ts'

// The one-shot runtime against Podman's Docker-compatible service (docs/PODMAN.md): the sandbox
// properties, and what differs from Docker (engine detection, output read from the k8s-file log,
// a missing command failing at attach). Runs only when a Podman socket answers: start one with
// `bash scripts/podman.sh start && bash scripts/podman.sh load`. The whole of runtime.test.ts also
// runs there with DOCKER_HOST=unix:///run/podman/podman.sock.

const SOCKET = process.env['PODMAN_SOCKET'] ?? '/run/podman/podman.sock'
const PROBE_TIMEOUT_MS = 500

/** GET `path` on the socket, or undefined if nothing answers within the probe timeout. */
async function get (path: string): Promise<string | undefined> {
  return await new Promise((resolve) => {
    const req = request({ socketPath: SOCKET, path, timeout: PROBE_TIMEOUT_MS }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => { resolve(res.statusCode === 200 ? body : undefined) })
      res.on('error', () => { resolve(undefined) })
    })
    req.on('timeout', () => { req.destroy() })
    req.on('error', () => { resolve(undefined) })
    req.end()
  })
}

/** Why the Podman tests cannot run here ('' when they can); decided in at most two probe timeouts. */
async function unavailable (): Promise<string> {
  if (!existsSync(SOCKET)) return `no Podman socket at ${SOCKET}`
  if (await get('/_ping') !== 'OK') return `nothing answers on ${SOCKET}`
  const version = await get('/version')
  if (engineOf(JSON.parse(version ?? '{}') as Dockerode.DockerVersion) !== 'podman') return `${SOCKET} answers but is not Podman`
  return ''
}

const reason = await unavailable()
if (reason !== '') {
  test.skip(`Podman runtime tests skipped: ${reason} (start one with 'bash scripts/podman.sh start && bash scripts/podman.sh load', or set PODMAN_SOCKET)`, () => {})
} else {
  podmanTests()
}

function podmanTests (): void {
  const podman = new Dockerode({ socketPath: SOCKET })
  const PREFIX = `pm-it-${process.pid}-${Date.now().toString(36)}`
  let seq = 0
  let runtime: Runtime

  const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
  const text = (r: RunResult): string => Buffer.from(r.output).toString()
  const jobId = (name: string): string => `${PREFIX}-${++seq}-${name}`

  async function run (name: string, container: ContainerConfig, input: string | Uint8Array = '', signal?: AbortSignal): Promise<RunResult> {
    return await runtime.run({ jobId: jobId(name), container, input: typeof input === 'string' ? enc(input) : input, ...(signal === undefined ? {} : { signal }) })
  }

  async function fails (t: ExecutionContext, promise: Promise<unknown>, name: string, code: string): Promise<Error & Record<string, unknown>> {
    const err = await t.throwsAsync(promise) as Error & Record<string, unknown>
    t.is(err?.name, name, `error name (message: ${err?.message})`)
    t.is(err?.code, code)
    return err
  }

  async function containersOf (prefix: string): Promise<Dockerode.ContainerInfo[]> {
    const list = await podman.listContainers({ all: true, filters: { label: ['inframind.job'] } })
    return list.filter((c) => c.Labels['inframind.job']?.startsWith(prefix) === true)
  }

  async function eventsOf (id: string, sinceMs: number): Promise<string[]> {
    const stream = await podman.getEvents({
      since: Math.floor(sinceMs / 1000) - 1,
      until: Number((Date.now() / 1000 + 0.05).toFixed(3)),
      filters: { type: ['container'], label: [`inframind.job=${id}`] }
    }) as NodeJS.ReadableStream
    let body = ''
    for await (const chunk of stream) body += String(chunk)
    return body.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { Action: string }).Action)
  }

  test.before(async () => {
    for (const image of [ECHO_IMAGE, NLP_IMAGE]) {
      const id = (await podman.getImage(image).inspect().catch(() => undefined))?.Id
      const want = lockedDigest(image).replace(/^sha256:/, '')
      if (id?.replace(/^sha256:/, '') !== want) throw new Error(`Podman at ${SOCKET} lacks ${image} (${want.slice(0, 12)}): run 'bash scripts/podman.sh load'`)
    }
    runtime = dockerRuntime({ socket: SOCKET })({ logger: silentLogger() })
    await runtime.start()
  })

  test.after.always(async () => {
    await runtime?.stop()
  })

  test.afterEach.always(async (t) => {
    await runtime.settled()
    t.deepEqual((await containersOf(PREFIX)).map((c) => c.Names.join(',')), [], 'no job container left behind')
    t.is(runtime.activeContainers(), 0)
  })

  test.serial('Podman is detected: a job container logs to k8s-file, and its output comes back whole', async (t) => {
    const id = jobId('detect')
    const pending = runtime.run({ jobId: id, container: shContainer('sleep 1; echo done'), input: enc('') })
    try {
      let logType: string | undefined
      for (let i = 0; i < 100 && logType === undefined; i++) {
        const [info] = await containersOf(id)
        // Podman's Docker-compatible inspect calls k8s-file "json-file"; its own API says what it is.
        const inspect = info === undefined ? undefined : await get(`/v4.0.0/libpod/containers/${info.Id}/json`)
        if (inspect !== undefined) logType = (JSON.parse(inspect) as { HostConfig: { LogConfig: { Type: string } } }).HostConfig.LogConfig.Type
        else await new Promise((resolve) => setTimeout(resolve, 20))
      }
      t.is(logType, 'k8s-file')
    } finally {
      t.is(text(await pending), 'done\n')
    }
  })

  test.serial('echo round trip: stdin exactly as sent, JOB_ID and env inside, container created then removed', async (t) => {
    const id = jobId('echo')
    const since = Date.now()
    const result = await runtime.run({ jobId: id, container: shContainer('cat; echo; echo "$JOB_ID $GREETING"', { env: { GREETING: 'hi' } }), input: enc('hello') })
    t.is(text(result), `hello\n${id} hi\n`)
    t.is(result.exitCode, 0)
    t.is(result.imageDigest, lockedDigest(ECHO_IMAGE))
    // Nothing but the input reaches stdin (dockerode's attach would send its options as a body).
    t.is(text(await run('empty', testContainer(), '')), '')
    await runtime.settled()
    const events = await eventsOf(id, since)
    t.true(events.includes('create') && events.includes('remove'), `engine events: ${events.join(',')}`)
  })

  test.serial('containers that exit within milliseconds never lose their output (40 runs, two at a time)', async (t) => {
    const script = shContainer('echo a; echo b; echo c')
    const outputs: string[] = []
    for (let i = 0; i < 20; i++) {
      const pair = await Promise.all([run('quick', script, ''), run('quick-in', script, 'unread input')])
      outputs.push(...pair.map(text))
    }
    t.deepEqual(outputs.filter((o) => o !== 'a\nb\nc\n'), [])
  })

  test.serial('the log gives stdout back byte for byte: binary, CRLF, NUL, empty and long lines, no final newline', async (t) => {
    const binary = Buffer.alloc(300_000)
    for (let i = 0; i < binary.length; i++) binary[i] = (i * 7919) % 256
    const bytes = testContainer({ outputSchema: 'bytes' })
    t.true(Buffer.from((await run('binary', bytes, binary)).output).equals(binary))
    const tricky = Buffer.concat([Buffer.from('a\r\n\n\n\0b\n'), Buffer.alloc(100_000, 'x'), Buffer.from('\nlast, no newline')])
    t.true(Buffer.from((await run('tricky', bytes, tricky)).output).equals(tricky))
    // stdout and stderr interleaved line by line: stdout alone comes back, in order.
    const mixed = await run('mixed', shContainer('i=0; while [ $i -lt 2000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done'))
    t.is(text(mixed), Array.from({ length: 2000 }, (_, i) => `out ${i}\n`).join(''))
    t.true(mixed.stderrTail.endsWith('err 1999\n'))
  })

  test.serial('no network: only the loopback interface and no route', async (t) => {
    const script = 'ls /sys/class/net; echo "routes:$(ip route)"; if nc -w 2 inframind.invalid 80 </dev/null; then echo REACHED; else echo BLOCKED; fi'
    t.is(text(await run('net', shContainer(script))), 'lo\nroutes:\nBLOCKED\n')
  })

  test.serial('read-only root; /tmp writable but noexec', async (t) => {
    const script = 'awk \'$2 == "/" { split($4, o, ","); print "root mount " o[1] }\' /proc/mounts; ' +
      'if echo x > /escape; then echo ROOT-WRITABLE; else echo root-ro; fi; echo ok > /tmp/f && cat /tmp/f; ' +
      'cp /bin/busybox /tmp/bb && if /tmp/bb true; then echo TMP-EXEC; else echo tmp-noexec; fi'
    t.is(text(await run('rofs', shContainer(script))), 'root mount ro\nroot-ro\nok\ntmp-noexec\n')
  })

  test.serial('non-root: the configured uid/gid, no capabilities, no new privileges', async (t) => {
    const script = "id -u; id -g; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status"
    t.is(text(await run('whoami', shContainer(script))).replace(/[ \t]+/g, ' '),
      '65534\n65534\nCapEff: 0000000000000000\nCapBnd: 0000000000000000\nNoNewPrivs: 1\n')
  })

  test.serial('pids limit: forks beyond it fail', async (t) => {
    const forks = 'n=0; while [ $n -lt 100 ]; do sleep 60 & n=$((n+1)); done; echo started $n'
    const err = await fails(t, run('forks', shContainer(forks, { resources: { pids: 16 } })), 'ContainerExitError', 'CONTAINER_EXIT')
    t.regex(String(err.stderrTail), /can't fork/)
  })

  test.serial('memory limit: a memory hog is OOM-killed', async (t) => {
    const err = await fails(t, run('memhog', testContainer({ command: ['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=300M', 'count=1'] })),
      'ContainerOomError', 'CONTAINER_OOM')
    t.is(err.exitCode, 137)
  })

  test.serial('wall-clock timeout: an endless loop is killed after timeoutMs', async (t) => {
    const began = Date.now()
    await fails(t, run('loop', shContainer('while :; do :; done', { timeoutMs: 1500 })), 'ContainerTimeoutError', 'CONTAINER_TIMEOUT')
    const took = Date.now() - began
    t.true(took >= 1500 && took < 10_000, `took ${took} ms`)
  })

  test.serial('output cap: a flood is killed live; a burst past the cap from a container that exits at once fails too; exactly the cap passes', async (t) => {
    const began = Date.now()
    await fails(t, run('yes', testContainer({ command: ['yes'], maxOutputBytes: 65536, timeoutMs: 60_000 })), 'OutputTooLargeError', 'OUTPUT_TOO_LARGE')
    t.true(Date.now() - began < 10_000, 'killed as soon as the cap was crossed')
    const bytes = { outputSchema: 'bytes' as const, maxOutputBytes: 65536 }
    await fails(t, run('burst', testContainer({ command: ['head', '-c', '65537', '/dev/zero'], ...bytes })), 'OutputTooLargeError', 'OUTPUT_TOO_LARGE')
    t.is((await run('exact', testContainer({ command: ['head', '-c', '65536', '/dev/zero'], ...bytes }))).output.byteLength, 65536)
  })

  test.serial('non-zero exit: the exit code and the stderr tail, from a container that exits at once', async (t) => {
    for (let i = 0; i < 5; i++) {
      const err = await fails(t, run('crash', shContainer('echo partial; echo "model file missing" >&2; exit 3')), 'ContainerExitError', 'CONTAINER_EXIT')
      t.is(err.exitCode, 3)
      t.is(err.stderrTail, 'model file missing\n')
    }
    const noisy = 'i=0; while [ $i -lt 3000 ]; do echo "line $i" >&2; i=$((i+1)); done; exit 1'
    const tail = String((await fails(t, run('noisy', shContainer(noisy)), 'ContainerExitError', 'CONTAINER_EXIT')).stderrTail)
    t.true(tail.length <= 4096 && tail.length > 4000, `tail of ${tail.length} chars`)
    t.true(tail.endsWith('line 2999\n'))
  })

  test.serial('a command missing from the image fails to start (Podman says so at attach)', async (t) => {
    await fails(t, run('nocmd', testContainer({ command: ['no-such-binary'] })), 'ContainerStartError', 'CONTAINER_START_FAILED')
  })

  test.serial('abort: a running job is killed promptly', async (t) => {
    const controller = new AbortController()
    const began = Date.now()
    setTimeout(() => { controller.abort() }, 500)
    await fails(t, run('abort', shContainer('sleep 30'), '', controller.signal), 'RunAbortedError', 'ABORTED')
    t.true(Date.now() - began < 10_000)
  })
}
