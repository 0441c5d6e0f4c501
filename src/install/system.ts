/** The machine the install runs on: read-only probes, and the one way to run a command (output shown, exit checked). */
import { spawn, spawnSync } from 'node:child_process'
import { accessSync, constants, existsSync, readFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { COMMAND_TIMEOUT_MS } from './constants.ts'
import { InstallError } from './errors.ts'

/** systemd is the init system right now (sd_booted(3)): only then can units be enabled and started. */
export function systemdRunning (): boolean {
  return existsSync('/run/systemd/system')
}

/** What PID 1 is, for the message that says why the unit was not started. */
export function pid1 (): string {
  try {
    return readFileSync('/proc/1/comm', 'utf8').trim()
  } catch {
    return 'unknown'
  }
}

export function isRoot (): boolean {
  return process.getuid?.() === 0
}

export function which (cmd: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const p = join(dir, cmd)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {}
  }
  return undefined
}

export interface UserEntry { uid: number, gid: number, home: string }

/** The passwd entry of a user (through NSS, like useradd sees it), or undefined. */
export function lookupUser (name: string): UserEntry | undefined {
  const r = spawnSync('getent', ['passwd', name], { encoding: 'utf8' })
  if (r.status !== 0) return undefined
  const f = r.stdout.trim().split(':')
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '' }
}

export function lookupGroup (name: string): number | undefined {
  const r = spawnSync('getent', ['group', name], { encoding: 'utf8' })
  if (r.status !== 0) return undefined
  return Number(r.stdout.trim().split(':')[2])
}

/** A unit file systemd knows by this name (administrator's or the distribution's). */
export function unitInstalled (name: string): boolean {
  return ['/etc/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'].some((d) => existsSync(join(d, name)))
}

/** Runs a command with its output passed to `log` line by line (indented); throws COMMAND_FAILED on a non-zero exit. */
export async function runCommand (argv: string[], log: (line: string) => void, opts: { cwd?: string, env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  const shown = showCommand(argv)
  await new Promise<void>((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: COMMAND_TIMEOUT_MS
    })
    let pending = ''
    const onData = (chunk: Buffer): void => {
      pending += chunk.toString('utf8')
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) log(`      ${line}\n`)
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('error', (err) => {
      reject(new InstallError('COMMAND_FAILED', `cannot run "${shown}": ${err.message}`, { cause: err }))
    })
    child.on('close', (code, signal) => {
      if (pending !== '') log(`      ${pending}\n`)
      if (code === 0) resolve()
      else reject(new InstallError('COMMAND_FAILED', `"${shown}" ${signal !== null ? `was killed by ${signal}` : `exited with ${code ?? '?'}`}; its output is above`))
    })
  })
}

/** A command as an operator would type it (arguments with spaces or quotes single-quoted). */
export function showCommand (argv: string[]): string {
  return argv.map((a) => /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`).join(' ')
}
