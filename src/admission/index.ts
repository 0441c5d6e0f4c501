/**
 * Who may act as what on the mesh: the admission mode and the operator-signed roster decide, never a
 * role a node claims for itself (docs/ARCHITECTURE.md, "Admission" and "Threat model").
 *
 * - private: only roster members count at all; each acts only in the roles the roster gives it.
 * - open: anyone may offer to work (a worker not in the roster is on probation); the roles others
 *   must trust (scheduler, gateway, validator, archive) still come only from the roster.
 * Either way `trusted_schedulers` adds schedulers this node's operator trusts by configuration.
 */
import type { AdmissionMode, Role } from '../config/types.ts'
import type { TopicName } from '../protocol/constants.ts'

/** Roles that hand out work: a worker takes assignments only from a node holding one of them. */
export const ASSIGNING_ROLES: readonly Role[] = ['scheduler', 'gateway']

/** How a scheduler may use a worker: rostered (trusted), on probation (open mesh only), or not at all. */
export type WorkerStanding = 'rostered' | 'probation' | 'refused'

export interface Admission {
  readonly mode: AdmissionMode
  /** The roles the roster gives `nodeId` ([] for a non-member). */
  rolesOf(nodeId: string): readonly Role[]
  /** May `nodeId` assign jobs to this node (roster scheduler or gateway, or mesh.trusted_schedulers)? */
  mayAssign(nodeId: string): boolean
  standing(workerId: string): WorkerStanding
  /** The gossip hook: may `author` publish on `topic` at all? Checked before any decoding. */
  mayPublish(topic: TopicName, author: string): boolean
}

export interface AdmissionInit {
  mode: AdmissionMode
  /** mesh.trusted_schedulers: node ids trusted to assign whatever the roster says. */
  trustedSchedulers: readonly string[]
}

export interface AdmissionComponents {
  /** The roster this node holds now (updates take effect at once: it is asked on every decision). */
  roster: { rolesOf(nodeId: string): readonly Role[] }
}

export function admission (init: AdmissionInit) {
  return (c: AdmissionComponents): Admission => {
    const trusted = new Set(init.trustedSchedulers)
    const has = (nodeId: string, role: Role): boolean => c.roster.rolesOf(nodeId).includes(role)
    const member = (nodeId: string): boolean => c.roster.rolesOf(nodeId).length > 0
    const mayAssign = (nodeId: string): boolean => trusted.has(nodeId) || ASSIGNING_ROLES.some((r) => has(nodeId, r))
    const standing = (workerId: string): WorkerStanding =>
      has(workerId, 'worker') ? 'rostered' : init.mode === 'open' ? 'probation' : 'refused'
    // What a topic's author must be. In an open mesh a worker on probation heartbeats, acks and
    // reports results like any worker; everything else needs a role from the roster in both modes.
    const rules: { [K in TopicName]: (author: string) => boolean } = {
      heartbeats: (a) => init.mode === 'open' || member(a) || trusted.has(a),
      assignments: mayAssign,
      acks: (a) => standing(a) !== 'refused',
      // A validator reports its re-executions like a worker reports its jobs.
      receipts: (a) => standing(a) !== 'refused' || has(a, 'validator'),
      attestations: (a) => has(a, 'validator'),
      // The roster inside is checked against the operator keys; who passes it on matters less.
      roster: (a) => init.mode === 'open' || member(a) || trusted.has(a),
      // Evidence about workers comes from those who assign to them (the evidence is checked too).
      disputes: (a) => ASSIGNING_ROLES.some((r) => has(a, r))
    }
    return {
      mode: init.mode,
      rolesOf: (nodeId) => c.roster.rolesOf(nodeId),
      mayAssign,
      standing,
      mayPublish: (topic, author) => rules[topic](author)
    }
  }
}
