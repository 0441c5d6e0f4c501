/**
 * Puts a package listing in place as a whole: copied into a sibling folder first, then swapped in
 * with two renames, so a running node (or a failed copy) never sees half old, half new files, and
 * files removed from the package do not linger. Everything is root-owned and not writable by others.
 */
import { chmodSync, constants, copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { MANIFEST_FILE } from './constants.ts'
import { InstallError } from './errors.ts'
import type { PackageListing } from './package-files.ts'

export interface Manifest {
  fingerprint: string
  source: string
  version: string
  files: number
}

/** The manifest of an installed package; undefined when `target` holds none (absent, or not ours). */
export function readManifest (target: string): Manifest | undefined {
  try {
    const m = JSON.parse(readFileSync(join(target, MANIFEST_FILE), 'utf8')) as Partial<Manifest>
    return typeof m.fingerprint === 'string' ? m as Manifest : undefined
  } catch {
    return undefined
  }
}

export function samePath (a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b)
  } catch {
    return false
  }
}

/** What putting `listing` at `target` would do: keep (same files), create, update; throws when target is someone else's. */
export function packageAction (source: string, target: string, listing: PackageListing): 'create' | 'update' | 'keep' {
  if (!existsSync(target)) return 'create'
  const manifest = readManifest(target)
  if (manifest === undefined) {
    throw new InstallError('NOT_OURS', `${target} exists but was not installed by infra install (no ${MANIFEST_FILE}); ` +
      'move it away, or pass --prefix DIR for another place, or run the install from that folder')
  }
  return manifest.fingerprint === listing.fingerprint && manifest.source === source ? 'keep' : 'update'
}

export function copyPackage (source: string, target: string, listing: PackageListing): void {
  const parent = dirname(target)
  const staging = join(parent, `.${basename(target)}.new-${process.pid}`)
  const old = join(parent, `.${basename(target)}.old-${process.pid}`)
  mkdirSync(parent, { recursive: true })
  rmSync(staging, { recursive: true, force: true })
  try {
    mkdirSync(staging)
    chmodSync(staging, 0o755)
    for (const e of listing.entries) {
      const to = join(staging, e.rel)
      if (e.type === 'dir') {
        mkdirSync(to)
        chmodSync(to, 0o755)
      } else if (e.type === 'symlink') {
        symlinkSync(e.link ?? '', to)
      } else {
        // A reflink where the filesystem can (instant, no extra space); a plain copy elsewhere.
        copyFileSync(join(source, e.rel), to, constants.COPYFILE_FICLONE)
        // Executable bits kept; never writable by group/others, never setuid (whatever umask or source said).
        chmodSync(to, (e.mode & 0o111) !== 0 ? 0o755 : 0o644)
      }
    }
    const manifest: Manifest = { fingerprint: listing.fingerprint, source, version: listing.version, files: listing.entries.length }
    writeFileSync(join(staging, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o644 })
    chmodSync(join(staging, MANIFEST_FILE), 0o644)
  } catch (err) {
    rmSync(staging, { recursive: true, force: true })
    throw new InstallError('WRITE_FAILED', `copying ${source} to ${target} failed: ${(err as Error).message}`, { cause: err })
  }
  const hadOld = existsSync(target)
  if (hadOld) renameSync(target, old)
  try {
    renameSync(staging, target)
  } catch (err) {
    if (hadOld) renameSync(old, target)
    rmSync(staging, { recursive: true, force: true })
    throw new InstallError('WRITE_FAILED', `moving the new package into ${target} failed: ${(err as Error).message}`, { cause: err })
  }
  if (hadOld) rmSync(old, { recursive: true, force: true })
}
