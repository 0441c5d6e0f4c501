import test from 'ava'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { TarManifestReader, normaliseReference, registryHost, splitReference } from '../../src/images/index.ts'

const run = promisify(execFile)
let dir: string
test.beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'inframind-tar-')) })
test.afterEach.always(async () => { await rm(dir, { recursive: true, force: true }) })

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

/** A docker-save style archive with one config per entry of `configs`; returns the tar bytes. */
async function archive (configs: string[], opts: { format?: string, configDir?: string, manifest?: boolean, prefix?: string } = {}): Promise<Buffer> {
  const root = join(dir, 'a')
  await mkdir(join(root, opts.configDir ?? ''), { recursive: true })
  const manifest = []
  for (const [i, config] of configs.entries()) {
    const name = join(opts.configDir ?? '', `${sha(config)}.json`)
    await writeFile(join(root, name), config)
    await mkdir(join(root, `layer${i}`), { recursive: true })
    await writeFile(join(root, `layer${i}`, 'layer.tar'), Buffer.alloc(5000 + i, i))
    manifest.push({ Config: name, RepoTags: [`t/x:${i}`], Layers: [`layer${i}/layer.tar`] })
  }
  if (opts.manifest !== false) await writeFile(join(root, 'manifest.json'), JSON.stringify(manifest))
  const out = join(dir, 'out.tar')
  await run('tar', [`--format=${opts.format ?? 'gnu'}`, '-cf', out, '-C', root, opts.prefix ?? '.'])
  return await readFile(out)
}

function read (bytes: Buffer, chunk: number): ReturnType<TarManifestReader['images']> {
  const reader = new TarManifestReader()
  for (let i = 0; i < bytes.length; i += chunk) reader.write(bytes.subarray(i, i + chunk))
  return reader.images()
}

test.serial('finds each image id (sha256 of its config) whatever the chunking', async (t) => {
  const configs = ['{"a":1}', '{"b":2}']
  const bytes = await archive(configs)
  const expected = configs.map((c, i) => ({ id: `sha256:${sha(c)}`, repoTags: [`t/x:${i}`] }))
  for (const chunk of [1, 7, 511, 512, 513, 65536, bytes.length]) t.deepEqual(read(bytes, chunk), expected, `chunk ${chunk}`)
})

test.serial('long names in pax and GNU formats, and configs in sub-folders (OCI-style blobs/)', async (t) => {
  const deep = `blobs/${'d'.repeat(120)}`
  for (const format of ['pax', 'gnu', 'ustar']) {
    await rm(join(dir, 'a'), { recursive: true, force: true })
    const bytes = await archive(['{"deep":true}'], { format, configDir: format === 'ustar' ? 'blobs/sha256' : deep })
    t.deepEqual(read(bytes, 1000), [{ id: `sha256:${sha('{"deep":true}')}`, repoTags: ['t/x:0'] }], format)
  }
})

test.serial('no manifest, a manifest naming a missing config, or garbage: undefined (the engine check decides)', async (t) => {
  t.is(read(await archive(['{"a":1}'], { manifest: false }), 4096), undefined)
  await rm(join(dir, 'a'), { recursive: true, force: true })
  const root = join(dir, 'a')
  await mkdir(root, { recursive: true })
  await writeFile(join(root, 'manifest.json'), JSON.stringify([{ Config: 'absent.json', RepoTags: [] }]))
  await run('tar', ['-cf', join(dir, 'm.tar'), '-C', root, '.'])
  t.is(read(await readFile(join(dir, 'm.tar')), 4096), undefined)
  t.is(read(Buffer.alloc(4096, 0x41), 512), undefined)
  t.is(read(Buffer.alloc(0), 1), undefined)
})

test.serial('a config above the read-ahead limit is not hashed (so the tar is left to the engine check)', async (t) => {
  const big = JSON.stringify({ pad: 'x'.repeat(1024 * 1024 + 10) })
  t.is(read(await archive([big]), 65536), undefined)
})

test('splitReference keeps registry ports and digests intact', (t) => {
  t.deepEqual(splitReference('inframind/echo:1'), { fromImage: 'inframind/echo', tag: '1' })
  t.deepEqual(splitReference('127.0.0.1:5000/inframind/echo:1'), { fromImage: '127.0.0.1:5000/inframind/echo', tag: '1' })
  t.deepEqual(splitReference('127.0.0.1:5000/inframind/echo'), { fromImage: '127.0.0.1:5000/inframind/echo', tag: '' })
  t.deepEqual(splitReference(`busybox@sha256:${'a'.repeat(64)}`), { fromImage: `busybox@sha256:${'a'.repeat(64)}`, tag: '' })
})

test('registryHost: the first component when it names a host, else Docker Hub', (t) => {
  t.is(registryHost('127.0.0.1:1/inframind/nope:1'), '127.0.0.1:1')
  t.is(registryHost('localhost/x:1'), 'localhost')
  t.is(registryHost('registry.example/x:1'), 'registry.example')
  t.is(registryHost('inframind/echo:1'), 'https://index.docker.io/v1/')
  t.is(registryHost('busybox'), 'https://index.docker.io/v1/')
})

test('normaliseReference: one spelling for the Docker and Podman names of one tag', (t) => {
  for (const ref of ['inframind/echo:1', 'localhost/inframind/echo:1', 'docker.io/inframind/echo:1']) t.is(normaliseReference(ref), 'inframind/echo:1', ref)
  t.is(normaliseReference('docker.io/library/busybox'), 'busybox:latest')
  t.is(normaliseReference('busybox:1'), 'busybox:1')
  t.is(normaliseReference('127.0.0.1:5000/x/y:2'), '127.0.0.1:5000/x/y:2')
  t.not(normaliseReference('inframind/echo:1'), normaliseReference('inframind/echo:2'))
})
