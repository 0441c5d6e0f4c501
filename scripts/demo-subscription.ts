/**
 * The demo's subscription and archive part: a recurring subscription answered by two distinct workers
 * in every interval (each output sealed to the owner and opened by it), then an archive's copy of a
 * finished job's certificate, looked up by job id and checked offline.
 */
import { randomBytes } from 'node:crypto'
import { decodeEnvelope } from '../src/envelope/index.ts'
import { identityFromSeed } from '../src/identity/index.ts'
import { inframindClient, openSubscriptionOutput, type SubscriptionResponse } from '../src/client/index.ts'
import { verifyCertificate } from '../src/verification/index.ts'
import type { Devnet } from '../src/cli/devnet.ts'

const PERIOD_S = 3
const FREQUENCY = 3
const REDUNDANCY = 2

export interface DemoOutput {
  out: (text: string) => void
  name: (nodeId: string) => string
}

/** Runs the subscription and prints it; returns the problems seen (empty = it held). */
export async function showSubscription (net: Devnet, o: DemoOutput): Promise<string[]> {
  const problems: string[] = []
  const client = inframindClient({ gateways: net.nodes.filter((n) => n.roles.includes('gateway')).map((n) => n.publicAddr) })
  try {
    const owner = identityFromSeed(randomBytes(32))
    const status = await client.createSubscription(owner, {
      containers: ['echo'], input: 'tick', frequency: FREQUENCY, period: PERIOD_S, redundancy: REDUNDANCY, nonce: `demo-${Date.now()}`
    })
    const sub = status.subscription!
    o.out(`\nsubscription ${sub.id.slice(0, 16)}… by owner ${o.name(sub.owner)}: echo every ${PERIOD_S} s, ${FREQUENCY} intervals, ${REDUNDANCY} distinct workers each; owned by ${o.name(status.ownerScheduler)}\n`)
    const byInterval = new Map<number, SubscriptionResponse[]>()
    for await (const r of client.watchSubscription(sub.id, 1, { timeoutMs: (FREQUENCY + 3) * PERIOD_S * 1000 + 30_000 })) {
      const list = byInterval.get(r.interval) ?? []
      list.push(r)
      byInterval.set(r.interval, list)
      const output = new TextDecoder().decode(openSubscriptionOutput(owner, r))
      o.out(`  interval ${r.interval} response ${r.index}: ${o.name(r.nodeId)} answered "${output}" (opened with the owner's key), job ${r.jobId}\n`)
    }
    for (let i = 1; i <= FREQUENCY; i++) {
      const list = byInterval.get(i) ?? []
      if (list.length !== REDUNDANCY || new Set(list.map((r) => r.nodeId)).size !== REDUNDANCY) problems.push(`interval ${i} got ${list.length} responses, not ${REDUNDANCY} from distinct workers`)
    }
  } catch (err) {
    problems.push(`the subscription failed: ${(err as Error).message}`)
  } finally {
    client.close()
  }
  return problems
}

/** Looks up a finished job's certificate on the archive node and checks it offline. */
export async function showArchivedCertificate (net: Devnet, jobId: string, output: Uint8Array, o: DemoOutput): Promise<string[]> {
  const keeper = net.nodes.find((n) => n.roles.includes('archive'))
  if (keeper === undefined) return ['no archive node in the devnet']
  const client = inframindClient({ gateways: [keeper.publicAddr] })
  try {
    let reply
    for (let i = 0; i < 40 && reply === undefined; i++) {
      reply = await client.getCertificate({ jobId }).catch(() => undefined)
      if (reply === undefined) await new Promise((resolve) => setTimeout(resolve, 250))
    }
    if (reply?.record == null) return [`archive ${keeper.name} has no certificate for job ${jobId}`]
    const checked = verifyCertificate(decodeEnvelope(reply.record.data), { output })
    if (!checked.valid) return [`the archived certificate does not verify: ${checked.code}: ${checked.reason}`]
    o.out(`\narchive ${keeper.name} holds the certificate of job ${jobId} (record ${reply.hash.slice(0, 16)}…): verified offline ✓, ` +
      `${checked.attestations.length} attestations, worker ${o.name(checked.receipt.workerId)}\n`)
    return []
  } finally {
    client.close()
  }
}
