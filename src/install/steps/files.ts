/** Folders and files the install owns (dir, file) and the config (written once, never replaced). */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { CONFIG_DIST_SUFFIX } from '../constants.ts'
import { InstallError } from '../errors.ts'
import { lookupGroup, lookupUser } from '../system.ts'
import type { Owner, Step } from '../types.ts'
import type { Handler } from './context.ts'

type Dir = Extract<Step, { kind: 'dir' }>
type File = Extract<Step, { kind: 'file' }>
type Config = Extract<Step, { kind: 'config' }>

const octal = (mode: number): string => mode.toString(8).padStart(4, '0')
const owned = (owner: Owner | undefined): string => owner !== undefined ? `, owner ${owner.user}:${owner.group}` : ''

/** chown by name; the names were created by earlier steps (or exist on every system: root). */
export function setOwner (path: string, owner: Owner | undefined): void {
  if (owner === undefined) return
  const uid = lookupUser(owner.user)?.uid
  const gid = lookupGroup(owner.group)
  if (uid === undefined || gid === undefined) {
    throw new InstallError('COMMAND_FAILED', `cannot give ${path} to ${owner.user}:${owner.group}: no such ${uid === undefined ? 'user' : 'group'}`)
  }
  chownSync(path, uid, gid)
}

/** Atomic replace (temp file + rename): a crash leaves the old file or the new one, never half of one. */
export function writeAtomically (path: string, content: string, mode: number, owner: Owner | undefined): void {
  mkdirSync(dirname(path), { recursive: true })
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`)
  try {
    writeFileSync(tmp, content, { mode })
    chmodSync(tmp, mode)
    setOwner(tmp, owner)
    renameSync(tmp, path)
  } finally {
    rmSync(tmp, { force: true })
  }
}

function readText (path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined
}

/** Filesystem failures (read-only, full disk) as an InstallError naming the path, instead of a stack trace. */
function writing<T> (display: string, fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof InstallError) throw err
    throw new InstallError('WRITE_FAILED', `cannot write ${display}: ${(err as Error).message}`, { cause: err })
  }
}

export const dir: Handler<Dir> = {
  preview (step) {
    if (existsSync(step.path)) {
      if (!lstatSync(step.path).isDirectory()) throw new InstallError('NOT_OURS', `${step.display} exists and is not a folder; move it away`)
      return { action: 'keep', notes: [`exists; mode set to ${octal(step.mode)}${owned(step.owner)}`] }
    }
    return { action: 'create', notes: [`mode ${octal(step.mode)}${owned(step.owner)}`] }
  },
  async apply (step, ctx) {
    const outcome = dir.preview(step, ctx)
    writing(step.display, () => {
      mkdirSync(step.path, { recursive: true })
      // Explicit: mkdir's mode passes through the umask, and an existing folder keeps whatever it had.
      chmodSync(step.path, step.mode)
      setOwner(step.path, step.owner)
    })
    return outcome
  }
}

export const file: Handler<File> = {
  preview (step) {
    const current = readText(step.path)
    if (current === undefined) return { action: 'create', notes: [`mode ${octal(step.mode)}${owned(step.owner)}`] }
    if (step.marker !== '' && !current.includes(step.marker)) {
      throw new InstallError('NOT_OURS', `${step.display} exists and was not written by infra install; move it away (or choose another place: infra install --help)`)
    }
    return current === step.content
      ? { action: 'keep', notes: ['already up to date'] }
      : { action: 'update', notes: ['rewritten with the current version'] }
  },
  async apply (step, ctx) {
    const outcome = file.preview(step, ctx)
    writing(step.display, () => {
      if (outcome.action === 'keep') {
        chmodSync(step.path, step.mode)
        setOwner(step.path, step.owner)
      } else {
        writeAtomically(step.path, step.content, step.mode, step.owner)
      }
    })
    return outcome
  }
}

export const config: Handler<Config> = {
  preview (step) {
    const current = readText(step.path)
    if (current === undefined) return { action: 'create', notes: [`from the package's defaults with the installed paths; mode ${octal(step.mode)}${owned(step.owner)}`] }
    if (current === step.content) return { action: 'keep', notes: ['as installed'] }
    return { action: 'keep', notes: ['edited: kept as it is', `the package's defaults differ: written to ${step.display}${CONFIG_DIST_SUFFIX} to compare`] }
  },
  async apply (step, ctx) {
    const outcome = config.preview(step, ctx)
    const current = readText(step.path)
    writing(step.display, () => {
      if (current === undefined) {
        // No-clobber: created only if still absent, so a config written meanwhile is never replaced.
        mkdirSync(dirname(step.path), { recursive: true })
        writeFileSync(step.path, step.content, { mode: step.mode, flag: 'wx' })
        chmodSync(step.path, step.mode)
        setOwner(step.path, step.owner)
      } else if (current !== step.content) {
        writeAtomically(step.path + CONFIG_DIST_SUFFIX, step.content, step.mode, step.owner)
      }
    })
    return outcome
  }
}
