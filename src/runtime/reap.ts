/**
 * Removes the containers an earlier run of this node left in the engine: a node that is SIGKILLed
 * (or whose engine refused a removal) leaves its job and service containers behind, and on a box
 * that runs for months they would fill the disk. Only containers labelled with this node's id go.
 */
import type Dockerode from 'dockerode'
import type { Logger } from '../telemetry/logger.ts'
import { LABEL_NODE, REAP_CONCURRENCY } from './constants.ts'

export interface ReapOptions {
  docker: Dockerode
  nodeId: string
  /** Limit of each engine call (the list, each removal). */
  engineTimeoutMs: number
  /** Ends the whole cleanup: removals not begun by then are left for the next start. */
  deadline: AbortSignal
  /** Containers the runtime tracks right now: never removed, whatever their labels. */
  keep: ReadonlySet<string>
  logger: Logger
}

export interface ReapResult {
  /** Containers of this node found that the runtime does not track. */
  found: number
  /** Of those, removed by this call. */
  removed: number
  /** Of those, still there: the engine refused or did not answer, or the deadline came first. */
  left: number
}

/** Never throws: a cleanup that fails must not fail the start; it is logged and tried again next start. */
export async function reapLeftovers (opts: ReapOptions): Promise<ReapResult> {
  const { docker, nodeId, engineTimeoutMs, deadline, keep, logger } = opts
  const limit = (): AbortSignal => AbortSignal.any([deadline, AbortSignal.timeout(engineTimeoutMs)])
  let listed: Dockerode.ContainerInfo[]
  try {
    listed = await docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${nodeId}`] }, abortSignal: limit() })
  } catch (err) {
    logger.warn({ err }, 'could not list containers left by an earlier run of this node; the next start tries again')
    return { found: 0, removed: 0, left: 0 }
  }
  // The label is checked here too: an engine that ignored the filter must not make us remove another node's containers.
  const leftovers = listed.filter((c) => c.Labels?.[LABEL_NODE] === nodeId && !keep.has(c.Id))
  let removed = 0
  let gone = 0
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < leftovers.length && !deadline.aborted) {
      const c = leftovers[next++]
      try {
        await docker.getContainer(c.Id).remove({ force: true, v: true, abortSignal: limit() })
        removed++
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode
        // 404: already gone; 409: a removal is already in progress. Neither is a leftover any more.
        if (status === 404 || status === 409) {
          gone++
          continue
        }
        logger.warn({ container: c.Id, name: c.Names?.[0], state: c.State, err }, 'could not remove a container left by an earlier run of this node; the next start tries again')
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(REAP_CONCURRENCY, leftovers.length) }, worker))
  return { found: leftovers.length, removed, left: leftovers.length - removed - gone }
}
