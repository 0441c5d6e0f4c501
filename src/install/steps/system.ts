/** Steps that run commands on the machine: the engine, the user, the sample images, systemd. */
import { InstallError } from '../errors.ts'
import { lookupGroup, lookupUser, pid1, runCommand, showCommand, systemdRunning, unitInstalled, which } from '../system.ts'
import type { Step } from '../types.ts'
import type { Handler, StepContext } from './context.ts'

type Of<K extends Step['kind']> = Extract<Step, { kind: K }>

/** The commands, decided from what the machine has now (so the preview lists exactly what apply runs). */
function engineCommands (step: Of<'engine'>, ctx: StepContext): string[][] {
  const cmds: string[][] = []
  const systemd = systemdRunning()
  const dockerHost = ctx.env.DOCKER_HOST !== undefined && ctx.env.DOCKER_HOST !== ''
  // On a systemd machine the engine must be a service of its own (it has to come back after a reboot);
  // docker-engine.sh, a development helper, would start a dockerd of its own instead.
  if (systemd && !dockerHost) {
    if (which('dockerd', ctx.env) === undefined && which('apt-get', ctx.env) !== undefined) {
      cmds.push(['apt-get', 'update', '-qq'], ['apt-get', 'install', '-y', '-qq', 'docker.io'])
    }
    if (unitInstalled('docker.service') || cmds.length > 0) cmds.push(['systemctl', 'enable', '--now', 'docker.service'])
  }
  // Checks the engine answers (starting or installing it where systemd does not run), and busybox-static for the images.
  cmds.push(['bash', step.script])
  return cmds
}

async function runAll (cmds: string[][], ctx: StepContext, cwd?: string): Promise<void> {
  for (const argv of cmds) {
    ctx.log(`    $ ${showCommand(argv)}\n`)
    await runCommand(argv, ctx.log, { cwd, env: { ...ctx.env, DEBIAN_FRONTEND: 'noninteractive' } })
  }
}

export const engine: Handler<Of<'engine'>> = {
  preview: (step, ctx) => ({
    action: 'run',
    notes: [...engineCommands(step, ctx).map(showCommand),
      '(docker-engine.sh: checks that the engine answers, starts or installs it where systemd does not run it, installs busybox-static for the sample images)']
  }),
  async apply (step, ctx) {
    const cmds = engineCommands(step, ctx)
    await runAll(cmds, ctx)
    return { action: 'run', notes: [] }
  }
}

function useradd (step: Of<'user'>): string[] {
  return ['useradd', '--system', '--user-group', '--home-dir', step.home, '--no-create-home', '--shell', '/usr/sbin/nologin',
    '--comment', 'inframind node', step.name]
}

export const user: Handler<Of<'user'>> = {
  preview (step) {
    const found = lookupUser(step.name)
    if (found !== undefined) return { action: 'keep', notes: [`exists (uid ${found.uid})`] }
    return { action: 'create', notes: [showCommand(useradd(step))] }
  },
  async apply (step, ctx) {
    const outcome = user.preview(step, ctx)
    if (outcome.action === 'create') await runAll([useradd(step)], ctx)
    return outcome
  }
}

export const images: Handler<Of<'images'>> = {
  preview: (step) => ({ action: 'run', notes: [`${showCommand(step.argv)} (builds only what is missing)`] }),
  async apply (step, ctx) {
    await runAll([step.argv], ctx, step.cwd)
    return { action: 'run', notes: [] }
  }
}

/** Restart only when something the running node reads changed; otherwise start (a no-op when it runs). */
const RESTART_ON = ['package', 'config', 'identity', 'unit', 'data-dir']

function serviceCommands (step: Of<'service'>, ctx: StepContext): string[][] {
  const cmds: string[][] = []
  if (ctx.changed.has('unit')) cmds.push(['systemctl', 'daemon-reload'])
  cmds.push(['systemctl', 'enable', step.unit])
  cmds.push(['systemctl', RESTART_ON.some((id) => ctx.changed.has(id)) ? 'restart' : 'start', step.unit])
  return cmds
}

function notBooted (): string[] {
  return [`systemd is not running on this machine (PID 1 is ${pid1()}): the unit is written but not enabled or started`,
    'on a machine booted with systemd: systemctl daemon-reload && systemctl enable --now inframind-node']
}

function checkGroup (ctx: StepContext): void {
  const group = ctx.plan.options.dockerGroup
  if (group !== '' && lookupGroup(group) === undefined) {
    throw new InstallError('COMMAND_FAILED', `group "${group}" does not exist, so systemd could not start the service with it: ` +
      'install the engine (it creates the group), or pass --docker-group NAME for the group that owns your engine\'s socket ("" for none)')
  }
}

export const service: Handler<Of<'service'>> = {
  preview (step, ctx) {
    if (!systemdRunning()) return { action: 'skip', notes: notBooted() }
    return { action: 'run', notes: serviceCommands(step, ctx).map(showCommand) }
  },
  async apply (step, ctx) {
    if (!systemdRunning()) return { action: 'skip', notes: notBooted() }
    checkGroup(ctx)
    await runAll(serviceCommands(step, ctx), ctx)
    return { action: 'run', notes: [] }
  }
}

export const skip: Handler<Of<'skip'>> = {
  preview: (step) => ({ action: 'skip', notes: [step.reason] }),
  apply: async (step) => ({ action: 'skip', notes: [step.reason] })
}
