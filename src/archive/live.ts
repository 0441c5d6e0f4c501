/**
 * Which archives are live for this node: roster members with the archive role it is connected to
 * (a sync or push needs a connection anyway), found through the DHT when it is connected to none.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Admission } from '../admission/index.ts'
import type { Mesh } from '../mesh/index.ts'
import { roleKey } from '../protocol/index.ts'
import { rendezvous } from '../records/index.ts'
import { DISCOVER_TIMEOUT_MS } from './constants.ts'

export type ArchiveMesh = Pick<Mesh, 'libp2p' | 'nodeId' | 'findProviders'>
export type ArchiveAdmission = Pick<Admission, 'rolesOf'>

export const isArchive = (admission: ArchiveAdmission, nodeId: string): boolean => admission.rolesOf(nodeId).includes('archive')

/** Connected roster archives, sorted (this node not included). */
export function connectedArchives (mesh: ArchiveMesh, admission: ArchiveAdmission): string[] {
  const ids = new Set<string>()
  for (const c of mesh.libp2p().getConnections()) {
    if (c.status !== 'open') continue
    const id = c.remotePeer.toString()
    if (id !== mesh.nodeId && isArchive(admission, id)) ids.add(id)
  }
  return [...ids].sort()
}

/** Asks the DHT for archive providers and dials the roster archives among them this node is not connected to. */
export async function discoverArchives (mesh: ArchiveMesh, admission: ArchiveAdmission, signal?: AbortSignal): Promise<void> {
  const sig = AbortSignal.any([AbortSignal.timeout(DISCOVER_TIMEOUT_MS), ...(signal !== undefined ? [signal] : [])])
  const connected = new Set(connectedArchives(mesh, admission))
  const found = await mesh.findProviders(roleKey('archive'), { signal: sig, limit: 32 })
  const libp2p = mesh.libp2p()
  await Promise.allSettled(found
    .filter((id) => id !== mesh.nodeId && !connected.has(id) && isArchive(admission, id))
    .map(async (id) => await libp2p.dial(peerIdFromString(id), { signal: sig })))
}

/** The `replicas` archives among `live` that hold a record: rendezvous over its raw 32-byte hash. */
export function holdersOf (hash: string, live: readonly string[], replicas: number): string[] {
  return rendezvous(Buffer.from(hash, 'hex'), live, replicas)
}
