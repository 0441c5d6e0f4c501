/**
 * The roster this node holds: loaded from mesh.admission.roster_file at start, replaced by each
 * newer operator-signed roster (from the control API, the mesh or a peer), rewritten to the file on
 * every change so a restart keeps it. rolesOf() is a map look-up: the gossip path asks it per message.
 */
import type { Role } from '../config/types.ts'
import type { SignedEnvelope } from '../envelope/index.ts'
import { nodeIdFromPublicKey } from '../identity/peer-id.ts'
import { TypedEmitter } from '../events.ts'
import type { Roster } from '../protocol/index.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { Startable } from '../types.ts'
import { isRosterRefusal, RosterNotStartedError } from './errors.ts'
import { readSignedRosterFile, signedRosterText, writeFileAtomically } from './files.ts'
import { rolesByMember, rosterHash, verifyRoster } from './verify.ts'

export interface RosterBookInit {
  /** mesh.admission.mesh_name. */
  meshName: string
  /** mesh.admission.operators: node ids of the keys whose rosters are taken. Empty: none is. */
  operators: readonly string[]
  /** mesh.admission.roster_file: read at start (absent is normal), rewritten (0600) on each change. */
  file: string
}

export interface RosterBookComponents {
  logger: Logger
  /** Registers inframind_roster_version and inframind_roster_updates_total. */
  metrics?: Metrics
}

/** A verified roster as held. */
export interface HeldRoster {
  roster: Roster
  /** The operator-signed envelope exactly as received: what this node passes on. */
  envelope: SignedEnvelope
  /** sha256 of the signed Roster bytes, hex. */
  hash: string
  /** Node id of the operator key that signed it. */
  signer: string
}

export interface RosterChange extends HeldRoster {
  /** Where it came from: "file" (at start), or what the caller of apply() named ("control", "gossip", "catch-up"). */
  source: string
  /** Version held before (0 = none). */
  previousVersion: number
}

export interface RosterBookEvents {
  changed: RosterChange
}

export interface RosterBook extends Startable {
  /** The roster held, or undefined when none (none at start, or the file failed verification). */
  current(): HeldRoster | undefined
  /** Version held; 0 when none. An expired roster still counts here, so an older one can never replace it. */
  version(): number
  /** Roles a node may play by the roster; [] for non-members, and for everyone once the roster has expired. */
  rolesOf(nodeId: string): readonly Role[]
  /** Whether the node is listed (with any roles, or none); false for everyone once the roster has expired. */
  isMember(nodeId: string): boolean
  /**
   * Verifies `envelope` against the operators, the mesh, the clock and the version held; when it
   * passes, holds it, writes it to the file and emits 'changed'. A refusal throws the typed error
   * (RosterStaleError, ...) and changes nothing. Resolves once the file is written.
   */
  apply(envelope: SignedEnvelope, source: string): Promise<HeldRoster>
  on<K extends keyof RosterBookEvents>(name: K, listener: (value: RosterBookEvents[K]) => void): () => void
}

const NO_ROLES: readonly Role[] = Object.freeze([])
/** Owner-only, like the node's key: the file says who may act as what, so nobody else may rewrite it. */
const ROSTER_FILE_MODE = 0o600

export function rosterBook (init: RosterBookInit) {
  return (components: RosterBookComponents): RosterBook => {
    const logger = components.logger.child({ component: 'roster' })
    const events = new TypedEmitter<RosterBookEvents>(logger)
    const operators = [...init.operators]
    let held: HeldRoster | undefined
    let roles = new Map<string, readonly Role[]>()
    let started = false
    let expiryLogged = false
    // Writes run one after another and each writes the roster held when it runs, so the file
    // always ends at the newest version whatever order concurrent applies finish in.
    let writing: Promise<void> = Promise.resolve()
    let writtenVersion = 0

    const updates = components.metrics?.counter({ name: 'inframind_roster_updates_total', help: 'Rosters offered to this node, by source and result (applied, or the refusal code)', labelNames: ['source', 'result'] })
    components.metrics?.gauge({ name: 'inframind_roster_version', help: 'Version of the operator-signed roster this node holds (0 = none)', read: () => held?.roster.version ?? 0 })

    /** False once the held roster's expiry has passed: from then on it grants nothing. */
    const valid = (): boolean => {
      const expires = held?.roster.expiresAtMs ?? 0
      if (expires === 0 || Date.now() < expires) return true
      if (!expiryLogged) {
        expiryLogged = true
        logger.warn({ version: held?.roster.version, expiredAt: new Date(expires).toISOString() }, 'the roster has expired: no node holds any role until a newer one is pushed ("infra roster sign" then "infra roster push")')
      }
      return false
    }

    const verify = (envelope: SignedEnvelope): HeldRoster => {
      const roster = verifyRoster(envelope, { operators, meshName: init.meshName, now: Date.now(), current: held?.roster.version ?? 0 })
      // verifyRoster checked the signature, so the key is the signer's.
      return { roster, envelope, hash: rosterHash(envelope.payload), signer: nodeIdFromPublicKey(envelope.publicKey) }
    }

    const hold = (next: HeldRoster, source: string): void => {
      const previousVersion = held?.roster.version ?? 0
      held = next
      roles = rolesByMember(next.roster)
      expiryLogged = false
      logger.info({ version: next.roster.version, members: next.roster.members.length, previousVersion, source, hash: next.hash }, 'roster applied')
      events.emit('changed', { ...next, source, previousVersion })
    }

    const persist = async (): Promise<void> => {
      writing = writing.then(async () => {
        const h = held
        if (h === undefined || h.roster.version === writtenVersion) return
        try {
          await writeFileAtomically(init.file, signedRosterText(h.envelope), ROSTER_FILE_MODE)
          writtenVersion = h.roster.version
        } catch (err) {
          // The roster still applies: keeping an older one in force because of a full disk would
          // keep removed members in. Peers hand it back over the catch-up protocol after a restart.
          logger.error({ err, file: init.file, version: h.roster.version }, 'could not write the roster file; the roster applies until restart')
        }
      })
      await writing
    }

    const load = async (): Promise<void> => {
      let envelope: SignedEnvelope | undefined
      try {
        envelope = await readSignedRosterFile(init.file)
      } catch (err) {
        logger.warn({ file: init.file, code: (err as { code?: string }).code, reason: (err as Error).message }, 'roster file not used: the node runs without a roster')
        return
      }
      if (envelope === undefined) {
        logger.info({ file: init.file }, 'no roster yet (push one with "infra roster push")')
        return
      }
      try {
        const next = verify(envelope)
        writtenVersion = next.roster.version
        hold(next, 'file')
      } catch (err) {
        if (!isRosterRefusal(err)) throw err
        updates?.inc({ source: 'file', result: err.code })
        logger.warn({ file: init.file, code: err.code, reason: err.message }, 'roster file not used: the node runs without a roster')
      }
    }

    return {
      current: () => held,
      version: () => held?.roster.version ?? 0,
      rolesOf: (nodeId) => held === undefined || !valid() ? NO_ROLES : roles.get(nodeId) ?? NO_ROLES,
      isMember: (nodeId) => held !== undefined && valid() && roles.has(nodeId),
      async apply (envelope, source) {
        if (!started) throw new RosterNotStartedError()
        let next: HeldRoster
        try {
          next = verify(envelope)
        } catch (err) {
          if (isRosterRefusal(err)) updates?.inc({ source, result: err.code })
          throw err
        }
        updates?.inc({ source, result: 'applied' })
        hold(next, source)
        await persist()
        return next
      },
      on: (name, listener) => events.on(name, listener),
      async start () {
        if (started) return
        held = undefined
        roles = new Map()
        writtenVersion = 0
        await load()
        started = true
      },
      async stop () {
        if (!started) return
        started = false
        await writing
      }
    }
  }
}
