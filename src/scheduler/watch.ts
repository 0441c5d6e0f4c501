import type { Mesh } from '../mesh/index.ts'

/** How often a job's worker is checked while the job runs there. */
export const WATCH_INTERVAL_MS = 500
/**
 * A worker with no mesh connection to this node for this long is taken as lost (a killed process's
 * sockets close at once); long enough for a connection the peer is re-opening, short enough that the
 * job is running elsewhere within seconds.
 */
export const DISCONNECT_GRACE_MS = 2_000
/** Why a worker whose heartbeats stopped (its connection still up, or not yet known down) is taken as lost. */
export const HEARTBEATS_STOPPED = 'its heartbeats stopped'

/**
 * Watches a worker while it runs a job: `lost` resolves when its heartbeats stop (it is no longer a
 * live peer) or it has had no connection to this node for DISCONNECT_GRACE_MS.
 */
export function watchWorker (mesh: Pick<Mesh, 'peers'>, workerId: string): { lost: Promise<{ lost: string }>, stop: () => void } {
  let timer: NodeJS.Timeout | undefined
  let since = 0
  const lost = new Promise<{ lost: string }>((resolve) => {
    timer = setInterval(() => {
      const now = Date.now()
      const peer = mesh.peers().find((p) => p.nodeId === workerId)
      if (peer === undefined || !peer.alive) {
        resolve({ lost: HEARTBEATS_STOPPED })
        return
      }
      if (peer.connected) since = 0
      else if (since === 0) since = now
      else if (now - since >= DISCONNECT_GRACE_MS) resolve({ lost: `no connection for ${Math.round((now - since) / 1000)} s` })
    }, WATCH_INTERVAL_MS)
  })
  return { lost, stop: () => clearInterval(timer) }
}
