import test from 'ava'
import type { ExecutionContext } from 'ava'
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Dockerode from 'dockerode'
import { imageCache } from '../../src/images/index.ts'
import type { ImageCache, ImageCacheInit } from '../../src/images/index.ts'
import { dockerRuntime, resolveEngine } from '../../src/runtime/index.ts'
import type { Runtime } from '../../src/runtime/index.ts'
import type { ContainerConfig, ImageSource } from '../../src/config/types.ts'
import { silentLogger } from '../../src/telemetry/logger.ts'
import { ECHO_IMAGE, lockedDigest, testContainer } from '../helpers/images.ts'

// The cache against the real engine. Image tars are built here, each with a random nonce in its
// config so its id exists nowhere else, and served by an HTTP server on 127.0.0.1 that counts
// requests. Serial: tests look at the engine's image events and lists. Every image, container,
// temp file and socket made here is removed afterwards.

const run = promisify(execFile)
const docker = new Dockerode(resolveEngine().options)
const NONCE = randomBytes(4).toString('hex')
const REPO = `inframind-test/images-${NONCE}`
const LABEL = `inframind.images-test=${NONCE}`
const EPOCH = '1970-01-01T00:00:00Z'

interface TestImage { tag: string, id: string, path: string, sha256: string }

let work: string
let server: Server
let base: string
let layerDir: string
let runtime: Runtime
let podman = false
const requests = new Map<string, number>()
const routes = new Map<string, (res: ServerResponse) => void>()
const caches: ImageCache[] = []
const madeIds = new Set<string>()
let seq = 0

/** A runnable image (static busybox, `cat`) whose config carries a nonce: a new id each call. */
async function makeImage (name: string, opts: { padConfigBytes?: number } = {}): Promise<TestImage> {
  const tag = `${REPO}:${name}`
  const layer = join(layerDir, 'layer.tar')
  const diffId = createHash('sha256').update(await readFile(layer)).digest('hex')
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    config: { User: '65534:65534', Env: ['PATH=/bin'], Cmd: ['cat'], WorkingDir: '/', Labels: {
      'inframind.test.nonce': `${NONCE}-${name}-${randomBytes(8).toString('hex')}`,
      ...(opts.padConfigBytes === undefined ? {} : { 'inframind.test.pad': 'x'.repeat(opts.padConfigBytes) })
    } },
    created: EPOCH,
    history: [{ created: EPOCH, created_by: 'test/integration/images.test.ts' }],
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] }
  }))
  const configHex = createHash('sha256').update(config).digest('hex')
  const n = ++seq
  const dir = join(work, `archive-${n}`)
  await mkdir(join(dir, diffId), { recursive: true })
  await copyFile(layer, join(dir, diffId, 'layer.tar'))
  await writeFile(join(dir, `${configHex}.json`), config)
  await writeFile(join(dir, 'manifest.json'), JSON.stringify([{ Config: `${configHex}.json`, RepoTags: [tag], Layers: [`${diffId}/layer.tar`] }]))
  const path = join(work, `image-${n}.tar`)
  await run('tar', ['--format=gnu', '-cf', path, '-C', dir, '.'])
  const id = `sha256:${configHex}`
  madeIds.add(id)
  return { tag, id, path, sha256: createHash('sha256').update(await readFile(path)).digest('hex') }
}

/** Serves `image` at a fresh path; returns its URL. */
function serve (image: TestImage, behaviour: 'normal' | 'stall' = 'normal'): string {
  const path = `/${++seq}/${image.tag.replace(/[^a-z0-9]+/gi, '-')}.tar`
  routes.set(path, (res) => {
    void readFile(image.path).then((bytes) => {
      res.writeHead(200, { 'content-type': 'application/x-tar', 'content-length': bytes.length })
      if (behaviour === 'stall') res.write(bytes.subarray(0, 4096)) // then nothing more: a link that died
      else res.end(bytes)
    })
  })
  return `${base}${path}`
}

function source (fields: Partial<ImageSource>): ImageSource {
  return { url: '', sha256: '', pull: false, username: '', password: '', ...fields }
}

function container (image: TestImage, src: Partial<ImageSource>, extra: Partial<ContainerConfig> = {}): ContainerConfig {
  return testContainer({ id: `c-${++seq}`, image: image.tag, digest: image.id, command: ['cat'], source: source(src), ...extra })
}

async function newCache (init: Partial<ImageCacheInit> = {}): Promise<ImageCache & { dataDir: string }> {
  const dataDir = init.dataDir ?? await mkdtemp(join(work, 'data-'))
  const cache = imageCache({ engineTimeoutMs: 10_000, pullTimeoutMs: 30_000, budgetBytes: 10 * 1024 ** 3, configured: [], ...init, dataDir })({ logger: silentLogger() })
  caches.push(cache)
  await cache.start()
  return Object.assign(cache, { dataDir })
}

async function fails (t: ExecutionContext, promise: Promise<unknown>, name: string, code: string): Promise<Error & Record<string, unknown>> {
  const err = await t.throwsAsync(promise) as Error & Record<string, unknown>
  t.is(err?.name, name, `error name (message: ${err?.message})`)
  t.is(err?.code, code)
  return err
}

async function present (ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect()
    return true
  } catch {
    return false
  }
}

/**
 * `load` events the engine recorded for image `id` since `sinceMs`. Podman's Docker API records no
 * load events (docs/PODMAN.md): there `expected` is returned, and the image checks alone decide.
 */
async function loadEvents (id: string, sinceMs: number, expected: number): Promise<number> {
  if (podman) return expected
  const stream = await docker.getEvents({
    since: Math.floor(sinceMs / 1000) - 1,
    until: Number((Date.now() / 1000 + 0.05).toFixed(3)),
    filters: { type: ['image'], event: ['load'] }
  }) as NodeJS.ReadableStream
  let body = ''
  for await (const chunk of stream) body += String(chunk)
  return body.split('\n').filter((l) => l !== '').filter((l) => (JSON.parse(l) as { Actor: { ID: string } }).Actor.ID === id).length
}

async function record (dataDir: string): Promise<Array<{ id: string, source: string }>> {
  return (JSON.parse(await readFile(join(dataDir, 'images.json'), 'utf8')) as { images: Array<{ id: string, source: string }> }).images
}

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'inframind-images-'))
  // One shared layer (static busybox as cat): images differ only by their config, so each is small.
  const rootfs = join(work, 'rootfs')
  await mkdir(join(rootfs, 'bin'), { recursive: true })
  await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'))
  await symlink('busybox', join(rootfs, 'bin', 'cat'))
  layerDir = join(work, 'layer')
  await mkdir(layerDir)
  await run('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--format=gnu', '-cf', join(layerDir, 'layer.tar'), '-C', rootfs, '.'])

  server = createServer((req, res) => {
    const path = req.url ?? ''
    requests.set(path, (requests.get(path) ?? 0) + 1)
    const route = routes.get(path)
    if (route === undefined) res.writeHead(404).end()
    else route(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  runtime = dockerRuntime({})({ logger: silentLogger() })
  await runtime.start()
  podman = (await docker.version()).Components?.some((c) => c.Name === 'Podman Engine') === true
})

test.afterEach.always(async () => {
  for (const cache of caches.splice(0)) await cache.stop()
})

test.after.always(async () => {
  await runtime?.stop()
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve))
  for (const c of await docker.listContainers({ all: true, filters: { label: [LABEL] } })) {
    await docker.getContainer(c.Id).remove({ force: true }).catch(() => {})
  }
  // Ids are unique to this run (nonce in the config), so forcing removes nothing of anyone else.
  for (const id of madeIds) await docker.getImage(id).remove({ force: true }).catch(() => {})
  // Only this run's tags: an image tagged here (echo) keeps its own names.
  for (const image of await docker.listImages({ filters: { reference: [`${REPO}`] } })) {
    for (const tag of (image.RepoTags ?? []).filter((r) => r.includes(`${REPO}:`))) await docker.getImage(tag).remove().catch(() => {})
  }
  await rm(work, { recursive: true, force: true })
})

test.serial('local hit: an image already in the engine is a hit, nothing is fetched, and a missing tag is found by id', async (t) => {
  const cache = await newCache({ hitCacheMs: 0 })
  t.deepEqual(cache.stats(), { hits: 0, misses: 0, hitRatio: 1 })
  const url = `${base}/never-${NONCE}.tar`
  const echo = testContainer({ source: source({ url, sha256: 'a'.repeat(64) }) })
  t.is(await cache.ensure(echo), lockedDigest(ECHO_IMAGE))
  t.is(requests.get(`/never-${NONCE}.tar`), undefined, 'no download for a local image')

  // Present by id under a tag the engine does not know: found, and the tag is added.
  const alias = `${REPO}:alias`
  t.is(await cache.ensure(testContainer({ image: alias, digest: lockedDigest(ECHO_IMAGE) })), lockedDigest(ECHO_IMAGE))
  t.is((await docker.getImage(alias).inspect()).Id, lockedDigest(ECHO_IMAGE))
  await docker.getImage(alias).remove() // only the alias tag: echo keeps its own
  t.true(await present(ECHO_IMAGE))
  t.deepEqual(cache.stats(), { hits: 2, misses: 0, hitRatio: 1 })
})

test.serial('a tar whose sha256 is wrong is refused and nothing is loaded', async (t) => {
  const image = await makeImage('bad-hash')
  const cache = await newCache()
  const since = Date.now()
  const err = await fails(t, cache.ensure(container(image, { url: serve(image), sha256: 'ab'.repeat(32) })), 'ImageTarHashMismatchError', 'IMAGE_TAR_HASH_MISMATCH')
  t.is(err.actual, image.sha256)
  t.false(await present(image.id), 'the image is not in the engine')
  t.false(await present(image.tag))
  t.is(await loadEvents(image.id, since, 0), 0, 'the engine saw no load of it')
  t.deepEqual(await readdir(join(cache.dataDir, 'image-downloads')), [], 'the downloaded tar is deleted')
  t.deepEqual(cache.stats(), { hits: 0, misses: 1, hitRatio: 0 })
})

test.serial('a correct tar is downloaded, verified, loaded and runs as the pinned id', async (t) => {
  const image = await makeImage('good')
  const cache = await newCache()
  const since = Date.now()
  const c = container(image, { url: serve(image), sha256: image.sha256 })
  t.false(await present(image.id))
  t.is(await cache.ensure(c), image.id)
  t.is(await loadEvents(image.id, since, 1), 1, 'loaded once')
  t.is((await docker.getImage(image.tag).inspect()).Id, image.id)
  const result = await runtime.run({ jobId: `images-it-${NONCE}-run`, container: c, input: new TextEncoder().encode('through a verified tar') })
  t.is(Buffer.from(result.output).toString(), 'through a verified tar')
  t.is(result.imageDigest, image.id)
  t.deepEqual((await record(cache.dataDir)).map((e) => [e.id, e.source]), [[image.id, 'tar']])
  t.deepEqual(await readdir(join(cache.dataDir, 'image-downloads')), [])
  // Reuse is a hit: no second download.
  t.is(await cache.ensure(c), image.id)
  t.deepEqual(cache.stats(), { hits: 1, misses: 1, hitRatio: 0.5 })
  await runtime.settled()
})

test.serial('a tar holding another image than the pinned one is refused with IMAGE_DIGEST_MISMATCH before loading', async (t) => {
  const served = await makeImage('other-content')
  const pinned = await makeImage('pinned-but-not-served')
  const cache = await newCache()
  const since = Date.now()
  const c = container(pinned, { url: serve(served), sha256: served.sha256 })
  const err = await fails(t, cache.ensure(c), 'ImageDigestMismatchError', 'IMAGE_DIGEST_MISMATCH')
  t.is(err.expected, pinned.id)
  t.is(err.actual, served.id)
  t.false(await present(served.id), 'the other image was not loaded')
  t.is(await loadEvents(served.id, since, 0), 0)
  t.false(await present(pinned.tag))
})

test.serial('a tar the cache cannot read ahead is checked after loading: a wrong image is removed and the tag put back', async (t) => {
  // A config above the read-ahead limit (1 MiB) is only hashed by the engine, so the load happens.
  const served = await makeImage('big-config', { padConfigBytes: 1_100_000 })
  const pinned = `sha256:${randomBytes(32).toString('hex')}`
  // The tag first names echo: the refused load moves it, and it must be moved back.
  await docker.getImage(ECHO_IMAGE).tag({ repo: REPO, tag: 'big-config' })
  const cache = await newCache()
  const since = Date.now()
  const err = await fails(t, cache.ensure(container(served, { url: serve(served), sha256: served.sha256 }, { digest: pinned })), 'ImageDigestMismatchError', 'IMAGE_DIGEST_MISMATCH')
  t.is(err.actual, served.id)
  t.is(await loadEvents(served.id, since, 1), 1, 'the engine did load it')
  t.false(await present(served.id), 'and the refused image was removed again')
  t.is((await docker.getImage(served.tag).inspect()).Id, lockedDigest(ECHO_IMAGE), 'the tag names what it named before')
  t.true(await present(ECHO_IMAGE))
  await docker.getImage(served.tag).remove()
  t.throws(() => readFileSync(join(cache.dataDir, 'images.json')), undefined, 'nothing recorded')
})

test.serial('an unreachable registry fails fast with REGISTRY_PULL_FAILED and never shows the credentials', async (t) => {
  const cache = await newCache()
  const password = `pw-${randomBytes(6).toString('hex')}`
  const c = testContainer({
    image: '127.0.0.1:1/inframind/nope:1',
    digest: `sha256:${randomBytes(32).toString('hex')}`,
    source: source({ pull: true, username: 'operator', password })
  })
  const began = Date.now()
  const err = await fails(t, cache.ensure(c), 'RegistryPullError', 'REGISTRY_PULL_FAILED')
  t.true(Date.now() - began < 5_000, `failed after ${Date.now() - began} ms`)
  t.false(err.message.includes(password))
  t.false(JSON.stringify(err, Object.getOwnPropertyNames(err)).includes(password))
  t.false(await present('127.0.0.1:1/inframind/nope:1'))
})

test.serial('a download slower than pullTimeoutMs fails with IMAGE_FETCH_TIMEOUT and leaves no temp file', async (t) => {
  const image = await makeImage('slow')
  const cache = await newCache({ pullTimeoutMs: 800 })
  const began = Date.now()
  await fails(t, cache.ensure(container(image, { url: serve(image, 'stall'), sha256: image.sha256 })), 'ImageFetchTimeoutError', 'IMAGE_FETCH_TIMEOUT')
  const took = Date.now() - began
  t.true(took >= 700 && took < 5_000, `took ${took} ms`)
  t.deepEqual(await readdir(join(cache.dataDir, 'image-downloads')), [])
  t.false(await present(image.id))
})

test.serial('a caller that gives up gets ABORTED at once, and stop() ends a fetch in progress', async (t) => {
  const image = await makeImage('abandoned')
  const cache = await newCache()
  const c = container(image, { url: serve(image, 'stall'), sha256: image.sha256 })
  const controller = new AbortController()
  setTimeout(() => { controller.abort() }, 300)
  const began = Date.now()
  await fails(t, cache.ensure(c, { signal: controller.signal }), 'ImageFetchAbortedError', 'ABORTED')
  t.true(Date.now() - began < 2_000)
  await fails(t, cache.ensure(c, { signal: AbortSignal.abort() }), 'ImageFetchAbortedError', 'ABORTED')

  const pending = cache.ensure(c)
  pending.catch(() => {})
  await new Promise((resolve) => setTimeout(resolve, 300))
  const stopBegan = Date.now()
  await cache.stop()
  t.true(Date.now() - stopBegan < 2_000, 'stop does not wait for the download')
  await fails(t, pending, 'ImageFetchAbortedError', 'ABORTED')
  t.deepEqual(await readdir(join(cache.dataDir, 'image-downloads')), [])
  await cache.stop()
  await fails(t, cache.ensure(c), 'ImageCacheNotStartedError', 'NOT_STARTED')
})

test.serial('concurrent ensure() calls for one image share one download', async (t) => {
  const image = await makeImage('shared')
  const cache = await newCache()
  const url = serve(image)
  const c = container(image, { url, sha256: image.sha256 })
  const ids = await Promise.all([1, 2, 3, 4].map(async () => await cache.ensure(c)))
  t.deepEqual(ids, [image.id, image.id, image.id, image.id])
  t.is(requests.get(new URL(url).pathname), 1, 'one request to the server')
  t.deepEqual(cache.stats(), { hits: 0, misses: 4, hitRatio: 0 })
})

test.serial('prefetch ensures each distinct image once and reports every container', async (t) => {
  const image = await makeImage('prefetch')
  const cache = await newCache()
  const url = serve(image)
  const missing = testContainer({ id: 'missing', image: `${REPO}:absent`, digest: `sha256:${randomBytes(32).toString('hex')}` })
  const results = await cache.prefetch([
    testContainer({ id: 'echo' }),
    testContainer({ id: 'echo-again' }),
    container(image, { url, sha256: image.sha256 }, { id: 'from-tar' }),
    missing
  ])
  t.deepEqual(results.map((r) => [r.containerId, r.ok, r.source]), [
    ['echo', true, 'local'], ['echo-again', true, 'local'], ['from-tar', true, 'tar'], ['missing', false, '']
  ])
  t.regex(results[3]?.error ?? '', /^IMAGE_NOT_FOUND: /)
  t.regex(results[3]?.error ?? '', /Tried: /)
  t.is(requests.get(new URL(url).pathname), 1)
  t.deepEqual(cache.stats(), { hits: 1, misses: 2, hitRatio: 1 / 3 }, 'three distinct images, each ensured once')
})

test.serial('eviction removes only unused images it brought in, least recently used first, never a configured one', async (t) => {
  const [a, b, c, d] = await Promise.all(['evict-a', 'evict-b', 'evict-c', 'evict-d'].map(async (name) => await makeImage(name)))
  if (a === undefined || b === undefined || c === undefined || d === undefined) throw new Error('images')
  const containers = [a, b, c, d].map((i) => container(i, { url: serve(i), sha256: i.sha256 }))
  const first = await newCache()
  for (const ctr of containers) await first.ensure(ctr)
  await first.stop()
  t.deepEqual((await record(first.dataDir)).map((e) => e.id).sort(), [a.id, b.id, c.id, d.id].sort())
  // c is held by a container (created, never started); b is configured; d was used last.
  const holder = await docker.createContainer({ Image: c.id, Labels: { [LABEL.split('=')[0] ?? '']: NONCE } })
  const size = (await docker.getImage(a.id).inspect()).Size
  const second = await newCache({ dataDir: first.dataDir, configured: [containers[1] as ContainerConfig], budgetBytes: size })
  // start() evicted a (least recently used of the unused a and d), leaving d within the budget.
  t.false(await present(a.id), 'a evicted')
  t.true(await present(b.id), 'configured b kept')
  t.true(await present(c.id), 'c kept while a container uses it')
  t.true(await present(d.id), 'd fits the budget')
  t.true(await present(ECHO_IMAGE), 'images it did not bring in are never touched')
  t.deepEqual((await record(first.dataDir)).map((e) => e.id).sort(), [b.id, c.id, d.id].sort())
  t.deepEqual(await second.evict(), [], 'nothing more to do')
  await holder.remove()
  const third = await newCache({ dataDir: first.dataDir, configured: [containers[1] as ContainerConfig], budgetBytes: 0 })
  t.deepEqual(await third.evict(), [], 'start() already evicted c and d')
  t.false(await present(c.id))
  t.false(await present(d.id))
  t.true(await present(b.id))
  t.deepEqual((await record(first.dataDir)).map((e) => e.id), [b.id])
})

test.serial('a verified hit is reused only inside the hit window; after it a retag is noticed', async (t) => {
  const image = await makeImage('retag')
  await run('docker', ['load', '-q', '-i', image.path])
  const cache = await newCache({ hitCacheMs: 300 })
  const c = container(image, {})
  t.is(await cache.ensure(c), image.id)
  // The tag now names another image and the pinned one is gone.
  await docker.getImage(ECHO_IMAGE).tag({ repo: REPO, tag: 'retag' })
  await docker.getImage(image.id).remove({ force: true })
  t.is(await cache.ensure(c), image.id, 'inside the window: the remembered id (a run by id would fail loudly, never run another image)')
  await new Promise((resolve) => setTimeout(resolve, 350))
  const err = await fails(t, cache.ensure(c), 'ImageDigestMismatchError', 'IMAGE_DIGEST_MISMATCH')
  t.is(err.actual, lockedDigest(ECHO_IMAGE))
  await docker.getImage(image.tag).remove()
  t.deepEqual(cache.stats(), { hits: 2, misses: 1, hitRatio: 2 / 3 })
})

test.serial('lifecycle: ensure before start is refused; start and stop are idempotent', async (t) => {
  const cache = imageCache({ engineTimeoutMs: 5_000, pullTimeoutMs: 5_000, budgetBytes: 0, dataDir: await mkdtemp(join(work, 'data-')), configured: [] })({ logger: silentLogger() })
  caches.push(cache)
  await fails(t, cache.ensure(testContainer()), 'ImageCacheNotStartedError', 'NOT_STARTED')
  await cache.start()
  await cache.start()
  t.is(await cache.ensure(testContainer()), lockedDigest(ECHO_IMAGE))
  await cache.stop()
  await cache.stop()
  await fails(t, cache.evict(), 'ImageCacheNotStartedError', 'NOT_STARTED')
})

test.serial('an engine that does not answer fails start() with ENGINE_UNAVAILABLE', async (t) => {
  const cache = imageCache({ socket: join(work, 'no-engine.sock'), engineTimeoutMs: 2_000, pullTimeoutMs: 5_000, budgetBytes: 0, dataDir: await mkdtemp(join(work, 'data-')), configured: [] })({ logger: silentLogger() })
  await fails(t, cache.start(), 'EngineUnavailableError', 'ENGINE_UNAVAILABLE')
  await cache.stop()
})
