/**
 * The operator's unsigned working copy of a roster (roster.draft.json): edited with `infra roster
 * add/remove`, or by hand, and turned into a signed roster by `infra roster sign`. `version` is the
 * version last signed (0 = never): signing issues version + 1 and writes it back.
 */
import type { Roster } from '../protocol/index.ts'
import { RosterMalformedError } from './errors.ts'

export interface DraftMember {
  node_id: string
  roles: string[]
  name: string
}

export interface RosterDraft {
  mesh: string
  version: number
  members: DraftMember[]
}

export function emptyDraft (mesh: string): RosterDraft {
  return { mesh, version: 0, members: [] }
}

/** The draft in a file's text; RosterMalformedError naming the file and the field when it is not one. */
export function parseDraft (text: string, file: string): RosterDraft {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new RosterMalformedError(`${file} is not JSON (${(err as Error).message})`, { cause: err })
  }
  const bad = (field: string, expected: string): RosterMalformedError =>
    new RosterMalformedError(`${file}: ${field} must be ${expected}`)
  if (!isObject(value)) throw bad('the file', 'a JSON object {"mesh", "version", "members"}')
  if ('payload_type' in value || 'payloadType' in value) {
    throw new RosterMalformedError(`${file} is a signed roster, not a draft; edit the draft it was signed from (roster.draft.json)`)
  }
  if (typeof value.mesh !== 'string' || value.mesh === '') throw bad('"mesh"', 'the mesh name (a non-empty string)')
  if (typeof value.version !== 'number' || !Number.isSafeInteger(value.version) || value.version < 0) throw bad('"version"', 'a non-negative integer')
  if (!Array.isArray(value.members)) throw bad('"members"', 'a list')
  const members = value.members.map((m: unknown, i: number): DraftMember => {
    if (!isObject(m)) throw bad(`members[${i}]`, 'an object {"node_id", "roles", "name"}')
    if (typeof m.node_id !== 'string') throw bad(`members[${i}].node_id`, 'a node id string')
    if (!Array.isArray(m.roles) || m.roles.some((r) => typeof r !== 'string')) throw bad(`members[${i}].roles`, 'a list of role names')
    if (m.name !== undefined && typeof m.name !== 'string') throw bad(`members[${i}].name`, 'a string')
    return { node_id: m.node_id, roles: [...m.roles as string[]], name: (m.name as string | undefined) ?? '' }
  })
  return { mesh: value.mesh, version: value.version, members }
}

export function draftText (draft: RosterDraft): string {
  return JSON.stringify(draft, null, 2) + '\n'
}

/** Adds a member, or replaces the roles (and the name, when given) of one already listed. */
export function upsertMember (draft: RosterDraft, member: { nodeId: string, roles: string[], name?: string }): { draft: RosterDraft, replaced: boolean } {
  const i = draft.members.findIndex((m) => m.node_id === member.nodeId)
  const members = [...draft.members]
  if (i === -1) {
    members.push({ node_id: member.nodeId, roles: [...member.roles], name: member.name ?? '' })
  } else {
    members[i] = { node_id: member.nodeId, roles: [...member.roles], name: member.name ?? members[i].name }
  }
  return { draft: { ...draft, members }, replaced: i !== -1 }
}

export function removeMember (draft: RosterDraft, nodeId: string): { draft: RosterDraft, removed: boolean } {
  const members = draft.members.filter((m) => m.node_id !== nodeId)
  return { draft: { ...draft, members }, removed: members.length !== draft.members.length }
}

/** The Roster the next signing issues: version = draft.version + 1. */
export function rosterFromDraft (draft: RosterDraft, times: { issuedAtMs: number, expiresAtMs: number }): Roster {
  return {
    mesh: draft.mesh,
    version: draft.version + 1,
    issuedAtMs: times.issuedAtMs,
    expiresAtMs: times.expiresAtMs,
    members: draft.members.map((m) => ({ nodeId: m.node_id, roles: [...m.roles], name: m.name }))
  }
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
