/**
 * Which files of a package an installed node needs, and a fingerprint of them: the run-time
 * entries (constants.PACKAGE_ENTRIES) and the production part of node_modules, as package-lock.json
 * marks it (packages with `"dev": true` stay behind: ava, typescript, ...).
 */
import { createHash } from 'node:crypto'
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { PACKAGE_ENTRIES, REQUIRED_ENTRIES, SKIPPED_MODULE_PATHS } from './constants.ts'
import { InstallError } from './errors.ts'

export interface PackageEntry {
  /** Path relative to the package, '/'-separated. */
  rel: string
  type: 'dir' | 'file' | 'symlink'
  mode: number
  size: number
  mtimeMs: number
  /** Symlink target, as stored. */
  link?: string
}

export interface PackageListing {
  entries: PackageEntry[]
  /** sha256 over every entry's path, type, mode, size and mtime: same files, same fingerprint. */
  fingerprint: string
  version: string
}

interface LockPackage { dev?: boolean, optional?: boolean, devOptional?: boolean }

export function listPackage (source: string): PackageListing {
  const missing = REQUIRED_ENTRIES.filter((e) => !existsSync(join(source, e)))
  if (missing.length > 0) {
    throw new InstallError('BAD_SOURCE', `${source} is not a complete inframind-node package (missing ${missing.join(', ')})` +
      (missing.includes('node_modules') ? `; run "npm ci --omit=dev" in it first (scripts/install.sh does)` : ''))
  }
  const lock = readLock(source)
  const absent = Object.entries(lock.packages)
    .filter(([key, p]) => key !== '' && p.dev !== true && p.optional !== true && p.devOptional !== true)
    .filter(([key]) => !existsSync(join(source, key)))
    .map(([key]) => key)
  if (absent.length > 0) {
    throw new InstallError('BAD_SOURCE', `${source}/node_modules lacks ${absent.length} package(s) the node needs (${absent.slice(0, 3).join(', ')}${absent.length > 3 ? ', ...' : ''}); ` +
      `run "npm ci --omit=dev" in ${source}`)
  }

  const entries: PackageEntry[] = []
  const skip = (rel: string): boolean => {
    if (!rel.startsWith('node_modules/')) return false
    const inModules = rel.slice('node_modules/'.length)
    if ((SKIPPED_MODULE_PATHS as readonly string[]).includes(inModules)) return true
    if (rel.split('/').includes('.bin')) return true
    return lock.packages[rel]?.dev === true
  }
  const walk = (rel: string): void => {
    if (skip(rel)) return
    const abs = join(source, rel)
    const st = lstatSync(abs)
    const base = { rel, mode: st.mode & 0o7777, size: st.size, mtimeMs: Math.trunc(st.mtimeMs) }
    if (st.isSymbolicLink()) {
      entries.push({ ...base, type: 'symlink', link: readlinkSync(abs) })
    } else if (st.isDirectory()) {
      entries.push({ ...base, type: 'dir', size: 0, mtimeMs: 0 })
      for (const name of readdirSync(abs).sort()) walk(`${rel}/${name}`)
    } else if (st.isFile()) {
      entries.push({ ...base, type: 'file' })
    }
    // Sockets, fifos and devices are not part of a package.
  }
  for (const entry of PACKAGE_ENTRIES) if (existsSync(join(source, entry))) walk(entry)

  const hash = createHash('sha256')
  for (const e of entries) hash.update(`${e.rel}\0${e.type}\0${e.mode}\0${e.size}\0${e.mtimeMs}\0${e.link ?? ''}\n`)
  return { entries, fingerprint: hash.digest('hex'), version: lock.version }
}

function readLock (source: string): { version: string, packages: Record<string, LockPackage> } {
  const file = join(source, 'package-lock.json')
  try {
    const lock = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown, packages?: unknown }
    if (typeof lock.packages !== 'object' || lock.packages === null) throw new Error('no "packages" map (lockfile version 2 or 3 expected)')
    return { version: typeof lock.version === 'string' ? lock.version : '', packages: lock.packages as Record<string, LockPackage> }
  } catch (err) {
    throw new InstallError('BAD_SOURCE', `cannot read ${file}: ${(err as Error).message}`, { cause: err })
  }
}
