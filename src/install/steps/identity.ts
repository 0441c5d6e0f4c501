/** The node's identity: created once with `infra init` (src/cli/init.ts), never replaced. */
import { existsSync } from 'node:fs'
import { runInit } from '../../cli/init.ts'
import { loadIdentity } from '../../identity/index.ts'
import { InstallError } from '../errors.ts'
import type { Step } from '../types.ts'
import type { Handler } from './context.ts'
import { setOwner } from './files.ts'

type Identity = Extract<Step, { kind: 'identity' }>

export const identity: Handler<Identity> = {
  preview (step) {
    if (!existsSync(step.keyFile)) {
      return { action: 'create', notes: [`a new ed25519 key (infra init --key ${step.display}), mode 0600${step.owner !== undefined ? `, owner ${step.owner.user}` : ''}`] }
    }
    try {
      return { action: 'keep', notes: [`node id ${loadIdentity(step.keyFile).nodeId} (never replaced)`] }
    } catch (err) {
      // A key that is there but unusable is the operator's to fix: the install must not paper over it.
      throw new InstallError('IDENTITY_FAILED', `${(err as Error).message} (the install never replaces a key)`, { cause: err })
    }
  },
  async apply (step, ctx) {
    const outcome = identity.preview(step, ctx)
    const out: string[] = []
    const err: string[] = []
    // Without --keygen, init loads the key or creates it when missing: an existing identity is never touched.
    const code = await runInit(['--key', step.keyFile], { out: (s) => out.push(s), err: (s) => err.push(s), env: ctx.env })
    if (code !== 0) throw new InstallError('IDENTITY_FAILED', err.join('').trim() || `infra init exited with ${code}`)
    setOwner(step.keyFile, step.owner)
    const id = out.join('').split('\n').find((l) => l.startsWith('node id:'))
    return { action: outcome.action, notes: id !== undefined ? [id.replace(/\s+/g, ' ')] : outcome.notes }
  }
}
