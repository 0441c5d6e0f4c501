/**
 * The Guardian: every job passes it before anything is stored or run. A pure function of the
 * node's container config and the job's origin, so every intake path (gRPC, mesh, assignments)
 * gets the same answer.
 */
import { cidrContains, parseCidr, type Cidr } from './cidr.ts'
import { GuardianRejectedError } from './errors.ts'
import type { ContainerConfig } from '../config/types.ts'
import type { JobOrigin } from '../runtime/types.ts'

export { parseCidr, cidrContains, type Cidr } from './cidr.ts'
export { GuardianRejectedError, GUARDIAN_CODES, type GuardianReason } from './errors.ts'

export interface GuardianInit {
  containers: ContainerConfig[]
}

/** What the Guardian looks at: nothing about inputs, only who asks for which containers. */
export interface GuardedJob {
  /** The chain, in order (one entry for a single-container job). */
  containers: string[]
  origin: JobOrigin
  requiresProof: boolean
  /**
   * origin.delegate was proven: it is the key that signed the job's subscription (never a name a
   * client typed). Only a proven delegate passes a container's allowed_delegates.
   */
  delegateVerified?: boolean
}

export interface Guardian {
  /** Returns when the job may run; throws GuardianRejectedError for the first rule it breaks. */
  check(job: GuardedJob): void
}

interface Rules {
  config: ContainerConfig
  /** Parsed once; an entry that does not parse (config validation refuses those) matches nobody. */
  cidrs: Cidr[]
  /** allowed_ips is non-empty, so only origins inside `cidrs` pass. */
  ipRestricted: boolean
  peers: ReadonlySet<string>
  delegates: ReadonlySet<string>
}

/**
 * Rules, in order, the first failure reported:
 * 1. NO_CONTAINERS: the job names none (INVALID_ARGUMENT: the request is malformed).
 * 2. UNKNOWN_CONTAINER: a container this node does not serve (NOT_FOUND).
 * 3. NOT_EXTERNAL: the first container is internal (`external: false`); internal ones may only follow.
 * 4. IP_NOT_ALLOWED: the origin IP is outside `allowed_ips` of any container in the chain. Skipped for
 *    mesh jobs (peer id set, no client IP), which rule 5 covers; a direct job whose IP is unknown is
 *    refused by a non-empty list (fail closed).
 * 5. PEER_NOT_ALLOWED: a mesh job's peer id is not in `allowed_peers` of a container in the chain.
 * 6. DELEGATE_NOT_ALLOWED: delegated work from a delegate not in `allowed_delegates` of a container,
 *    or from a delegate that is only named, not proven: a container with allowed_delegates takes
 *    delegated work only as a subscription signed by the owner (the signer is the delegate).
 * 7. PROOF_UNSUPPORTED: a proof is required but the last container lacks `generates_proofs` (FAILED_PRECONDITION).
 * An empty allow-list allows everyone.
 */
export function guardian (init: GuardianInit): Guardian {
  const rules = new Map<string, Rules>(init.containers.map((c) => [c.id, {
    config: c,
    cidrs: c.allowedIps.map((text) => parseCidr(text)).filter((x): x is Cidr => x !== undefined),
    ipRestricted: c.allowedIps.length > 0,
    peers: new Set(c.allowedPeers),
    delegates: new Set(c.allowedDelegates)
  }]))
  const served = [...rules.keys()]

  return {
    check (job) {
      const { origin } = job
      const ids = Array.isArray(job.containers) ? job.containers : []
      if (ids.length === 0) {
        throw new GuardianRejectedError('NO_CONTAINERS', '', origin, `the job names no container; this node serves: ${list(served)}`)
      }
      const chain: Rules[] = []
      for (const id of ids) {
        const r = rules.get(id)
        if (r === undefined) throw new GuardianRejectedError('UNKNOWN_CONTAINER', String(id), origin, `unknown container "${String(id)}"; this node serves: ${list(served)}`)
        chain.push(r)
      }
      const first = chain[0] as Rules
      if (!first.config.external) {
        throw new GuardianRejectedError('NOT_EXTERNAL', first.config.id, origin,
          `container "${first.config.id}" is internal (external: false) and may only follow another container in a chain`)
      }
      if (origin.peerId === '' || origin.ip !== '') {
        for (const r of chain) {
          if (r.ipRestricted && !r.cidrs.some((cidr) => cidrContains(cidr, origin.ip))) {
            throw new GuardianRejectedError('IP_NOT_ALLOWED', r.config.id, origin, `origin address is not in allowed_ips of container "${r.config.id}"`)
          }
        }
      }
      if (origin.peerId !== '') {
        const r = chain.find((x) => x.peers.size > 0 && !x.peers.has(origin.peerId))
        if (r !== undefined) throw new GuardianRejectedError('PEER_NOT_ALLOWED', r.config.id, origin, `peer is not in allowed_peers of container "${r.config.id}"`)
      }
      if (origin.delegate !== '') {
        const r = chain.find((x) => x.delegates.size > 0 && !x.delegates.has(origin.delegate))
        if (r !== undefined) throw new GuardianRejectedError('DELEGATE_NOT_ALLOWED', r.config.id, origin, `delegate is not in allowed_delegates of container "${r.config.id}"`)
        const claimed = job.delegateVerified !== true ? chain.find((x) => x.delegates.size > 0) : undefined
        if (claimed !== undefined) {
          throw new GuardianRejectedError('DELEGATE_NOT_ALLOWED', claimed.config.id, origin,
            `container "${claimed.config.id}" takes delegated work only as a subscription signed by the delegate (CreateSubscription): a delegate named in a job request proves nothing`)
        }
      }
      const last = chain[chain.length - 1] as Rules
      if (job.requiresProof && !last.config.generatesProofs) {
        throw new GuardianRejectedError('PROOF_UNSUPPORTED', last.config.id, origin,
          `the job requires a proof but its last container "${last.config.id}" does not declare generates_proofs`)
      }
    }
  }
}

function list (ids: string[]): string {
  return ids.length > 0 ? ids.join(', ') : '(none configured)'
}
