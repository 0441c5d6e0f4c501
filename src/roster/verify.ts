/**
 * The roster's rules, in the order a node checks them: an operator signed it (type, signature,
 * signer), it is a well-formed Roster, for this mesh, not expired, and newer than the one held.
 * Trust comes first, so nothing an unknown key sent is parsed.
 */
import { createHash } from 'node:crypto'
import { ROLES } from '../config/constants.ts'
import type { Role } from '../config/types.ts'
import { clip, signEnvelope, verifyEnvelope, type SignedEnvelope } from '../envelope/index.ts'
import type { Identity } from '../identity/types.ts'
import { nodeIdFromPublicKey, publicKeyFromNodeId } from '../identity/peer-id.ts'
import { decodeRoster, encodeRoster, PAYLOAD_TYPES, type Roster } from '../protocol/index.ts'
import { MAX_ROSTER_BYTES } from './constants.ts'
import {
  RosterExpiredError, RosterMalformedError, RosterStaleError, RosterUnknownOperatorError, RosterUnsignedError, RosterWrongMeshError
} from './errors.ts'

export interface VerifyRosterOptions {
  /** Node ids of the operator keys trusted (mesh.admission.operators); empty refuses every roster. */
  operators: readonly string[]
  /** mesh.admission.mesh_name: a roster for another mesh is refused. */
  meshName: string
  /** The instant expiry is judged at (ms since the epoch). */
  now: number
  /** Version of the roster held now; a roster not above it is stale. Absent or 0: none held. */
  current?: number
}

/** A roster whose signature verified (not yet judged against any node's operators or mesh). */
export interface OpenedRoster {
  roster: Roster
  /** Node id of the signing key. */
  signer: string
  /** sha256 of the signed Roster bytes, hex: names this roster whatever envelope carries it. */
  hash: string
}

const KNOWN_ROLES: ReadonlySet<string> = new Set(ROLES)

/** The signer's node id when `env` is a roster envelope whose signature verifies; RosterUnsignedError otherwise. */
export function rosterSigner (env: SignedEnvelope): string {
  const type = (env as { payloadType?: unknown } | null)?.payloadType
  if (type !== PAYLOAD_TYPES.roster) {
    throw new RosterUnsignedError(`payload type is ${typeof type === 'string' ? `"${clip(type)}"` : 'missing'}, not "${PAYLOAD_TYPES.roster}"`)
  }
  try {
    verifyEnvelope(env, { payloadType: PAYLOAD_TYPES.roster })
  } catch (err) {
    throw new RosterUnsignedError((err as Error).message, { cause: err })
  }
  return nodeIdFromPublicKey(env.publicKey)
}

/** Decodes the signed bytes strictly and checks the roster's own rules (RosterMalformedError). */
export function parseRoster (payload: Uint8Array): Roster {
  if (payload.byteLength > MAX_ROSTER_BYTES) throw new RosterMalformedError(`${payload.byteLength} bytes, more than the ${MAX_ROSTER_BYTES} allowed`)
  let roster: Roster
  try {
    roster = decodeRoster(payload)
  } catch (err) {
    throw new RosterMalformedError(`not a protobuf inframind.v1.Roster (${(err as Error).message})`, { cause: err })
  }
  checkRoster(roster)
  return roster
}

/**
 * The rules a roster's content must follow, signed or not (the CLI checks a draft with them before
 * signing): a mesh name, a version of at least 1, and members with valid node ids, known roles, each
 * member and each of its roles listed once.
 */
export function checkRoster (roster: Roster): void {
  if (roster.mesh === '') throw new RosterMalformedError('mesh is empty; set "mesh" to the mesh name (mesh.admission.mesh_name)')
  if (!Number.isSafeInteger(roster.version) || roster.version < 1) {
    throw new RosterMalformedError(`version ${roster.version} is not a positive integer (version 0 means "no roster")`)
  }
  const seen = new Set<string>()
  roster.members.forEach((m, i) => {
    const at = `members[${i}]`
    try {
      publicKeyFromNodeId(m.nodeId)
    } catch (err) {
      throw new RosterMalformedError(`${at}.node_id: ${(err as Error).message}; use the id "infra init" prints on that node`, { cause: err })
    }
    if (seen.has(m.nodeId)) throw new RosterMalformedError(`${at}: node ${m.nodeId} is listed twice; list each member once with all its roles`)
    seen.add(m.nodeId)
    const roles = new Set<string>()
    for (const role of m.roles) {
      if (!KNOWN_ROLES.has(role)) throw new RosterMalformedError(`${at}.roles: unknown role "${clip(role, 32)}" (known: ${ROLES.join(', ')})`)
      if (roles.has(role)) throw new RosterMalformedError(`${at}.roles: "${role}" is listed twice`)
      roles.add(role)
    }
  })
}

/** Type, signature and content, with no node's trust applied: what `infra roster show` reports. */
export function openRoster (env: SignedEnvelope): OpenedRoster {
  const signer = rosterSigner(env)
  return { roster: parseRoster(env.payload), signer, hash: rosterHash(env.payload) }
}

/**
 * Everything a node checks before it takes a roster; returns the roster or throws the refusal
 * (RosterUnsignedError, RosterUnknownOperatorError, RosterMalformedError, RosterWrongMeshError,
 * RosterExpiredError, RosterStaleError).
 */
export function verifyRoster (env: SignedEnvelope, opts: VerifyRosterOptions): Roster {
  const signer = rosterSigner(env)
  if (!opts.operators.includes(signer)) throw new RosterUnknownOperatorError(signer, opts.operators)
  const roster = parseRoster(env.payload)
  if (roster.mesh !== opts.meshName) throw new RosterWrongMeshError(opts.meshName, roster.mesh)
  if (roster.expiresAtMs !== 0 && roster.expiresAtMs <= opts.now) throw new RosterExpiredError(roster.expiresAtMs)
  const current = opts.current ?? 0
  if (roster.version <= current) throw new RosterStaleError(roster.version, current)
  return roster
}

/** Signs a roster as the operator; the content is checked first, so an operator never signs a roster nodes refuse. */
export function signRoster (operator: Identity, roster: Roster): SignedEnvelope {
  checkRoster(roster)
  const payload = encodeRoster(roster)
  if (payload.byteLength > MAX_ROSTER_BYTES) throw new RosterMalformedError(`${payload.byteLength} bytes, more than the ${MAX_ROSTER_BYTES} allowed`)
  return signEnvelope(operator, PAYLOAD_TYPES.roster, payload)
}

export function rosterHash (payload: Uint8Array): string {
  return createHash('sha256').update(payload).digest('hex')
}

/** Roles by member, for O(1) look-ups; unknown roles cannot occur (checkRoster refused them). */
export function rolesByMember (roster: Roster): Map<string, readonly Role[]> {
  return new Map(roster.members.map((m) => [m.nodeId, Object.freeze([...m.roles] as Role[])]))
}
