/** `infra roster`: the operator's tools for a private mesh's roster (draft, sign, show, push). */
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { newNetworkKey } from '../admission/network-key.ts'
import { connectControl } from '../api/client.ts'
import { DEFAULT_MESH_NAME, ROLES } from '../config/constants.ts'
import { expandHome, loadIdentity, loadOrCreateIdentity, publicKeyFromNodeId } from '../identity/index.ts'
import {
  checkRoster, DEFAULT_DRAFT_FILE, DEFAULT_MESH_KEY_FILE, DEFAULT_OPERATOR_KEY_FILE, DEFAULT_SIGNED_FILE, draftText, emptyDraft,
  isRosterRefusal, openRoster, parseDraft, parseSignedRosterText, readSignedRosterFile, readSmallFile, removeMember, rosterFromDraft,
  rosterToJson, signedRosterText, signRoster, upsertMember, writeFileAtomically, type OpenedRoster, type RosterDraft
} from '../roster/index.ts'
import { str, UsageError, type ParsedArgs } from './args.ts'
import { reportRpcError } from './client-commands.ts'
import type { CliIo } from './io.ts'
import { resolveEndpoints } from './endpoints.ts'
import { table } from './format.ts'

/** Same rule as mesh.admission.mesh_name: a roster for a name no config accepts would be refused everywhere. */
const MESH_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/
/** The draft and the signed roster are public (ids and roles); only the keys are secret. */
const PUBLIC_FILE_MODE = 0o644
const DURATION = /^(\d+)(s|m|h|d)$/
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

function path (args: ParsedArgs, name: string, def: string, env: NodeJS.ProcessEnv): string {
  return resolve(expandHome(str(args, name) ?? def, env))
}

/** Runs a step whose refusals are the user's to fix: printed as "infra roster: reason", exit 1. */
async function failing (io: CliIo, step: () => Promise<number>): Promise<number> {
  try {
    return await step()
  } catch (err) {
    if (err instanceof UsageError) throw err
    io.err(`infra roster: ${(err as Error).message}\n`)
    return 1
  }
}

async function readDraft (file: string): Promise<RosterDraft> {
  const text = await readSmallFile(file)
  if (text === undefined) throw new Error(`no draft at ${file}: run "infra roster init" (or pass --draft FILE)`)
  return parseDraft(text, file)
}

export async function rosterInit (args: ParsedArgs, io: CliIo): Promise<number> {
  if (args.positionals.length > 0) throw new UsageError(`infra roster init takes no arguments, got "${args.positionals[0]}"`)
  const mesh = str(args, 'mesh') ?? DEFAULT_MESH_NAME
  if (!MESH_NAME.test(mesh)) throw new UsageError(`--mesh "${mesh}" is not a mesh name (lowercase letters, digits, . _ -; up to 64)`)
  const draftFile = path(args, 'draft', DEFAULT_DRAFT_FILE, io.env)
  const meshKeyFile = path(args, 'mesh-key', DEFAULT_MESH_KEY_FILE, io.env)
  const keyFile = path(args, 'operator-key', DEFAULT_OPERATOR_KEY_FILE, io.env)
  return await failing(io, async () => {
    const { identity, created } = loadOrCreateIdentity(keyFile)
    const meshKeyCreated = !existsSync(meshKeyFile)
    if (meshKeyCreated) await writeFile(meshKeyFile, newNetworkKey(), { mode: 0o600, flag: 'wx' })
    let draft: RosterDraft
    const draftCreated = !existsSync(draftFile)
    if (draftCreated) {
      draft = emptyDraft(mesh)
      await writeFileAtomically(draftFile, draftText(draft), PUBLIC_FILE_MODE)
    } else {
      draft = await readDraft(draftFile)
    }
    io.out([
      `operator id:  ${identity.nodeId}`,
      `operator key: ${identity.keyFile} (${created ? 'created' : 'existing'}; keep it off the nodes, offline if you can)`,
      `mesh key:     ${meshKeyFile} (${meshKeyCreated ? 'created' : 'existing'}; secret: only the mesh's nodes hold it)`,
      `draft:        ${draftFile} (${draftCreated ? 'created' : 'existing'}; mesh "${draft.mesh}", last signed version ${draft.version}, ${draft.members.length} members)`,
      ...(draft.mesh !== mesh && str(args, 'mesh') !== undefined ? [`note: the existing draft is for mesh "${draft.mesh}", not "${mesh}"`] : []),
      '',
      'next:',
      '  1. on each node, run "infra init" and note the node id it prints',
      '  2. infra roster add NODE_ID --roles worker[,scheduler,gateway,...] [--name HOST]',
      `  3. infra roster sign --operator-key ${identity.keyFile} --out ${DEFAULT_SIGNED_FILE}`,
      `  4. on each node: copy ${meshKeyFile} to <data_dir>/${DEFAULT_MESH_KEY_FILE} and ${DEFAULT_SIGNED_FILE} to <data_dir>/${DEFAULT_SIGNED_FILE} (chmod 600 the mesh key),`,
      '     and set in its config.yaml:',
      '       mesh:',
      '         admission:',
      '           mode: private',
      `           mesh_name: ${draft.mesh}`,
      `           operators: [${identity.nodeId}]`,
      `  5. later changes: add/remove, sign again, then "infra roster push ${DEFAULT_SIGNED_FILE} --control ADDR" on any one node`,
      ''
    ].join('\n'))
    return 0
  })
}

function parseRoles (value: string | undefined): string[] {
  if (value === undefined) throw new UsageError(`--roles is required: a comma list of ${ROLES.join(', ')}`)
  const roles = value.split(',').map((r) => r.trim())
  for (const role of roles) {
    if (!(ROLES as readonly string[]).includes(role)) throw new UsageError(`--roles: unknown role "${role}" (known: ${ROLES.join(', ')})`)
  }
  if (new Set(roles).size !== roles.length) throw new UsageError(`--roles "${value}" lists a role twice`)
  return roles
}

function nodeIdArg (args: ParsedArgs, usage: string): string {
  if (args.positionals.length !== 1) throw new UsageError(`usage: ${usage}`)
  const id = args.positionals[0]
  try {
    publicKeyFromNodeId(id)
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; use the id "infra init" prints on that node`)
  }
  return id
}

export async function rosterAdd (args: ParsedArgs, io: CliIo): Promise<number> {
  const nodeId = nodeIdArg(args, 'infra roster add NODE_ID --roles ROLE[,ROLE...] [--name NAME] [--draft F]')
  const roles = parseRoles(str(args, 'roles'))
  const file = path(args, 'draft', DEFAULT_DRAFT_FILE, io.env)
  return await failing(io, async () => {
    const { draft, replaced } = upsertMember(await readDraft(file), { nodeId, roles, name: str(args, 'name') })
    await writeFileAtomically(file, draftText(draft), PUBLIC_FILE_MODE)
    io.out(`${replaced ? 'updated' : 'added'} ${nodeId} (${roles.join(', ')}) in ${file}; sign it to take effect: infra roster sign\n`)
    return 0
  })
}

export async function rosterRemove (args: ParsedArgs, io: CliIo): Promise<number> {
  const nodeId = nodeIdArg(args, 'infra roster remove NODE_ID [--draft F]')
  const file = path(args, 'draft', DEFAULT_DRAFT_FILE, io.env)
  return await failing(io, async () => {
    const { draft, removed } = removeMember(await readDraft(file), nodeId)
    if (!removed) {
      io.err(`infra roster: ${nodeId} is not in ${file}\n`)
      return 1
    }
    await writeFileAtomically(file, draftText(draft), PUBLIC_FILE_MODE)
    io.out(`removed ${nodeId} from ${file}; sign and push it to take effect\n`)
    return 0
  })
}

/** "30d", "12h", "90m", "45s" in ms; "0" = never expires. */
export function parseExpiry (value: string | undefined): number {
  if (value === undefined || value === '0') return 0
  const m = DURATION.exec(value)
  if (m === null || Number(m[1]) === 0) throw new UsageError(`--expires "${value}" is not a duration like 30d, 12h, 90m or 0 (never)`)
  return Number(m[1]) * UNIT_MS[m[2]]
}

export async function rosterSign (args: ParsedArgs, io: CliIo): Promise<number> {
  if (args.positionals.length > 0) throw new UsageError(`infra roster sign takes no arguments, got "${args.positionals[0]}"`)
  const lifetimeMs = parseExpiry(str(args, 'expires'))
  const draftFile = path(args, 'draft', DEFAULT_DRAFT_FILE, io.env)
  const out = path(args, 'out', DEFAULT_SIGNED_FILE, io.env)
  const keyFile = path(args, 'operator-key', DEFAULT_OPERATOR_KEY_FILE, io.env)
  return await failing(io, async () => {
    const draft = await readDraft(draftFile)
    const operator = loadIdentity(keyFile)
    const now = Date.now()
    const roster = rosterFromDraft(draft, { issuedAtMs: now, expiresAtMs: lifetimeMs === 0 ? 0 : now + lifetimeMs })
    const env = signRoster(operator, roster)
    // The signed file first: if it cannot be written, the draft keeps its version and nothing was issued.
    await writeFileAtomically(out, signedRosterText(env), PUBLIC_FILE_MODE)
    await writeFileAtomically(draftFile, draftText({ ...draft, version: roster.version }), PUBLIC_FILE_MODE)
    io.out(`signed roster version ${roster.version} for mesh "${roster.mesh}": ${roster.members.length} members, ` +
      `${roster.expiresAtMs === 0 ? 'never expires' : `expires ${new Date(roster.expiresAtMs).toISOString()}`}\n` +
      `operator: ${operator.nodeId}\nwritten:  ${out}\n` +
      (roster.members.length === 0 ? 'note: no members: every node that takes this roster trusts nobody in any role\n' : '') +
      `push it to a node: infra roster push ${out} --control ADDR\n`)
    return 0
  })
}

export async function rosterShow (args: ParsedArgs, io: CliIo): Promise<number> {
  if (args.flags.has('node')) return await showNode(args, io)
  if (args.positionals.length > 1) throw new UsageError('usage: infra roster show [FILE] [--operators ID,...] [--json]')
  const operators = str(args, 'operators')?.split(',').map((s) => s.trim()).filter((s) => s !== '')
  const file = resolve(expandHome(args.positionals[0] ?? DEFAULT_DRAFT_FILE, io.env))
  const json = args.flags.has('json')
  return await failing(io, async () => {
    const text = await readSmallFile(file)
    if (text === undefined) throw new Error(`no such file: ${file}`)
    if (!/"payload_?[tT]ype"/.test(text)) return showDraft(parseDraft(text, file), json, io)
    let opened: OpenedRoster
    try {
      opened = openRoster(parseSignedRosterText(text, file))
    } catch (err) {
      if (!isRosterRefusal(err)) throw err
      io.out(json ? JSON.stringify({ valid: false, code: err.code, reason: err.message }, null, 2) + '\n' : `invalid: ${err.message}\n`)
      return 1
    }
    const operator = operators === undefined ? undefined : operators.includes(opened.signer)
    const expired = opened.roster.expiresAtMs !== 0 && opened.roster.expiresAtMs <= Date.now()
    const valid = operator !== false && !expired
    if (json) {
      io.out(JSON.stringify({ valid, signer: opened.signer, signer_is_operator: operator ?? null, expired, hash: opened.hash, ...rosterToJson(opened.roster) }, null, 2) + '\n')
    } else {
      io.out(`signed roster: signature valid\nsigner:   ${opened.signer} (${operator === undefined ? 'operator not checked: pass --operators' : operator ? 'one of --operators' : 'NOT one of --operators: nodes trusting those refuse it'})\n`)
      io.out(describe(opened.roster, opened.hash, expired))
    }
    return valid ? 0 : 1
  })
}

function showDraft (draft: RosterDraft, json: boolean, io: CliIo): number {
  let problem: string | undefined
  try {
    checkRoster(rosterFromDraft(draft, { issuedAtMs: 0, expiresAtMs: 0 }))
  } catch (err) {
    problem = (err as Error).message
  }
  if (json) {
    io.out(JSON.stringify({ draft: true, valid: problem === undefined, ...(problem !== undefined ? { problem } : {}), ...draft }, null, 2) + '\n')
  } else {
    io.out(`draft (unsigned): mesh "${draft.mesh}", last signed version ${draft.version}, the next signing issues ${draft.version + 1}\n`)
    io.out(members(draft.members.map((m) => ({ nodeId: m.node_id, roles: m.roles, name: m.name }))))
    if (problem !== undefined) io.out(`problem: ${problem}\n`)
  }
  return problem === undefined ? 0 : 1
}

function describe (roster: OpenedRoster['roster'], hash: string, expired: boolean): string {
  const rows: Array<[string, string]> = [
    ['mesh', roster.mesh],
    ['version', String(roster.version)],
    ['issued', roster.issuedAtMs > 0 ? new Date(roster.issuedAtMs).toISOString() : '-'],
    ['expires', roster.expiresAtMs === 0 ? 'never' : `${new Date(roster.expiresAtMs).toISOString()}${expired ? ' (EXPIRED: nodes refuse it)' : ''}`],
    ['hash', `sha256:${hash}`]
  ]
  return rows.map(([k, v]) => `${(k + ':').padEnd(9)} ${v}`).join('\n') + '\n' + members(roster.members)
}

function members (list: Array<{ nodeId: string, roles: string[], name: string }>): string {
  if (list.length === 0) return 'members:  none\n'
  return `members (${list.length}):\n` + table(['NODE', 'ROLES', 'NAME'], list.map((m) => [m.nodeId, m.roles.join(',') || '-', m.name]))
}

async function endpointsOf (args: ParsedArgs, io: CliIo): Promise<{ control: string, timeoutMs: number }> {
  const t = str(args, 'timeout')
  const timeoutMs = t === undefined ? 10_000 : Number(t)
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout must be a positive number of milliseconds, got "${t}"`)
  const ep = await resolveEndpoints({ addr: str(args, 'addr'), control: str(args, 'control'), config: str(args, 'config'), needs: 'control' }, io.env)
  return { control: ep.control, timeoutMs }
}

async function showNode (args: ParsedArgs, io: CliIo): Promise<number> {
  if (args.positionals.length > 0) throw new UsageError('infra roster show --node takes no file')
  const { control, timeoutMs } = await endpointsOf(args, io)
  const client = connectControl(control)
  try {
    const status = await client.getRoster({ timeoutMs })
    const opened = status.roster !== null ? openRoster(status.roster) : undefined
    if (args.flags.has('json')) {
      io.out(JSON.stringify({ mode: status.mode, operators: status.operators, version: status.version, ...(opened !== undefined ? { signer: opened.signer, hash: opened.hash, roster: rosterToJson(opened.roster) } : { roster: null }) }, null, 2) + '\n')
      return 0
    }
    io.out(`admission: ${status.mode}\noperators: ${status.operators.length > 0 ? status.operators.join(', ') : 'none (mesh.admission.operators is empty: every roster is refused)'}\n`)
    if (opened === undefined) {
      io.out('roster:    none (push one with "infra roster push FILE")\n')
      return 0
    }
    io.out(`signer:    ${opened.signer}\n` + describe(opened.roster, opened.hash, opened.roster.expiresAtMs !== 0 && opened.roster.expiresAtMs <= Date.now()))
    return 0
  } catch (err) {
    return reportRpcError(err, control, io)
  } finally {
    client.close()
  }
}

export async function rosterPush (args: ParsedArgs, io: CliIo): Promise<number> {
  if (args.positionals.length !== 1) throw new UsageError('usage: infra roster push FILE [--control ADDR] [--config F]')
  const file = resolve(expandHome(args.positionals[0], io.env))
  const { control, timeoutMs } = await endpointsOf(args, io)
  let envelope
  try {
    envelope = await readSignedRosterFile(file)
  } catch (err) {
    io.err(`infra roster: ${(err as Error).message}\n`)
    return 1
  }
  if (envelope === undefined) {
    io.err(`infra roster: no such file: ${file}\n`)
    return 1
  }
  const client = connectControl(control)
  try {
    const status = await client.updateRoster(envelope, { timeoutMs })
    io.out(`applied: roster version ${status.version} is in force on the node at ${control}; the mesh passes it on to the other nodes\n`)
    return 0
  } catch (err) {
    const e = err as Partial<grpc.ServiceError>
    // The node's reason says what to fix (sign again, wrong mesh, unknown operator...).
    if (e.code === grpc.status.FAILED_PRECONDITION || e.code === grpc.status.INVALID_ARGUMENT) {
      io.err(`refused: ${e.details ?? e.message}\n`)
      return 1
    }
    return reportRpcError(err, control, io)
  } finally {
    client.close()
  }
}
