/**
 * `infra containers`: the containers a node serves and their state; with --wait, until every image is
 * fetched and every service is healthy (a bar per container on a TTY: the bytes of its image download
 * while it is pulled, its state otherwise). `infra reputation`: what this node's scheduler has
 * recorded of each worker.
 */
import { connectControl } from '../api/client.ts'
import type { ContainerInfo } from '../protocol/generated.ts'
import { str, UsageError, type ParsedArgs } from './args.ts'
import { endpoints, reportRpcError, timeoutMs } from './client-commands.ts'
import { formatDuration, shortDigest, table } from './format.ts'
import type { CliIo } from './io.ts'
import { containerProgress, containerStage, pullText } from './progress.ts'
import type { PullBytes } from './progress.ts'

/** How often --wait asks the node again: a local call, and an image fetch takes seconds at least. */
const POLL_MS = 500
/** --wait gives up after this unless --wait-timeout says otherwise: a large image on a slow edge link. */
const DEFAULT_WAIT_MS = 10 * 60_000

function note (c: ContainerInfo): string {
  if (c.lastError !== '') return c.lastError.slice(0, 80)
  // A pulled image is on its way (its bytes say more than "missing"); a container past that stage has
  // its image, whatever a status read of a moment ago said (image_present is up to a second old).
  return c.imagePresent || c.state === 'pulling' || containerStage(c.state).at > 0 ? '' : 'image missing'
}

/** The download's bytes while the container is pulled and the node has heard from the fetch. */
function pullOf (c: ContainerInfo): PullBytes | undefined {
  if (c.state !== 'pulling' || (c.pullDoneBytes === 0 && c.pullTotalBytes === 0)) return undefined
  return { doneBytes: c.pullDoneBytes, totalBytes: c.pullTotalBytes }
}

export function containerToJson (c: ContainerInfo): Record<string, unknown> {
  return {
    id: c.id,
    mode: c.mode,
    state: c.state,
    restarts: c.restarts,
    image: c.image,
    digest: c.digest,
    image_present: c.imagePresent,
    input_schema: c.inputSchema,
    output_schema: c.outputSchema,
    network: c.network,
    timeout_ms: c.timeoutMs,
    max_output_bytes: c.maxOutputBytes,
    external: c.external,
    generates_proofs: c.generatesProofs,
    description: c.description,
    last_error: c.lastError,
    pull_done_bytes: c.pullDoneBytes,
    pull_total_bytes: c.pullTotalBytes
  }
}

function pullNote (c: ContainerInfo): string {
  const pull = pullOf(c)
  return pull === undefined ? note(c) : pullText(pull)
}

function print (list: ContainerInfo[], io: CliIo): void {
  if (list.length === 0) { io.out('no containers (add some under containers: in config.yaml)\n'); return }
  io.out(table(['ID', 'MODE', 'STATE', 'RESTARTS', 'IMAGE', 'DIGEST', 'NOTE'], list.map((c) => [
    c.id, c.mode, c.state, String(c.restarts), c.image, shortDigest(c.digest), pullNote(c)
  ])))
}

export async function runContainers (args: ParsedArgs, io: CliIo): Promise<number> {
  const json = args.flags.has('json')
  const waitText = str(args, 'wait-timeout')
  const waitMs = waitText === undefined ? DEFAULT_WAIT_MS : Number(waitText)
  if (!Number.isFinite(waitMs) || waitMs <= 0) throw new UsageError(`--wait-timeout must be a positive number of milliseconds, got "${waitText}"`)
  const perCall = timeoutMs(args)
  const ep = await endpoints(args, io, 'control')
  const client = connectControl(ep.control)
  try {
    let list = await client.listContainers({ timeoutMs: perCall })
    if (args.flags.has('wait')) {
      const started = Date.now()
      const progress = await containerProgress(io.stderr, { quiet: json })
      const settled = (): boolean => list.every((c) => { const s = containerStage(c.state); return s.done || s.failed })
      try {
        for (;;) {
          progress.update(list.map((c) => {
            const pull = pullOf(c)
            return { id: c.id, state: c.state, image: c.image, note: note(c), ...(pull === undefined ? {} : { pull }) }
          }))
          if (settled() || Date.now() - started >= waitMs) break
          await new Promise((resolve) => setTimeout(resolve, POLL_MS))
          list = await client.listContainers({ timeoutMs: perCall })
        }
      } finally {
        const failed = list.filter((c) => containerStage(c.state).failed).length
        const waiting = list.filter((c) => { const s = containerStage(c.state); return !s.done && !s.failed }).length
        progress.stop(json ? undefined : `${list.length - failed - waiting} of ${list.length} containers ready after ${formatDuration(Date.now() - started)}${failed > 0 ? `, ${failed} failed` : ''}${waiting > 0 ? `, ${waiting} still not ready` : ''}`)
      }
    }
    if (json) io.out(JSON.stringify(list.map(containerToJson), null, 2) + '\n')
    else print(list, io)
    // --wait answers the question "is everything up?" with the exit status too.
    if (args.flags.has('wait') && !list.every((c) => containerStage(c.state).done)) return 1
    return 0
  } catch (err) {
    return reportRpcError(err, ep.control, io)
  } finally {
    client.close()
  }
}

export async function runReputation (args: ParsedArgs, io: CliIo): Promise<number> {
  const ep = await endpoints(args, io, 'control')
  const client = connectControl(ep.control)
  try {
    const { nodes } = await client.getReputation({ timeoutMs: timeoutMs(args) })
    if (args.flags.has('json')) { io.out(JSON.stringify(nodes, null, 2) + '\n'); return 0 }
    if (nodes.length === 0) { io.out('no workers scored yet (this node has assigned no job on the mesh)\n'); return 0 }
    const now = Date.now()
    io.out(table(['NODE', 'SCORE', 'OK', 'FAILED', 'TIMEOUTS', 'REFUSED', 'DISPUTES LOST', 'ACK', 'EXCLUDED'], nodes.map((n) => [
      n.nodeId, n.score.toFixed(2), String(n.successes), String(n.failures), String(n.timeouts), String(n.refusals), String(n.disputesLost),
      `${n.ackLatencyMs.toFixed(0)} ms`, n.excludedUntilMs > now ? `${formatDuration(n.excludedUntilMs - now)} more` : '-'
    ])))
    return 0
  } catch (err) {
    return reportRpcError(err, ep.control, io)
  } finally {
    client.close()
  }
}
