/**
 * Writes docs/dashboard.png, the README's picture of the dashboard: a small devnet (a
 * scheduler+gateway, two workers, a validator), jobs sent through the gateway's gRPC as a client
 * would (one chain, one verified by re-execution, one refused by the Guardian) spread over half a
 * minute so the charts have a shape, then the gateway's dashboard in headless Chromium with one
 * job's detail open. The same tooling as the browser test (Debian's chromium, playwright-core).
 *
 *   npm run setup && bash scripts/browser.sh && node scripts/dashboard-screenshot.ts [--out FILE]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { connectNode, type NodeClient } from '../src/api/client.ts'
import { startDevnet, type Devnet } from '../src/cli/devnet.ts'
import { NODE_FILE } from '../src/types.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CHROMIUM = process.env.INFRAMIND_CHROMIUM ?? '/usr/bin/chromium'
const TIMEOUT_MS = 120_000
const outArg = process.argv.indexOf('--out')
const OUT = path.resolve(outArg >= 0 && process.argv[outArg + 1] !== undefined ? process.argv[outArg + 1] : path.join(ROOT, 'docs', 'dashboard.png'))

const say = (line: string): void => { process.stderr.write(`dashboard-screenshot: ${line}\n`) }
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

/** Submits a job and waits for its end; a refusal is logged (the Guardian's shows on the page). */
async function run (client: NodeClient, req: Parameters<NodeClient['submitJob']>[0]): Promise<void> {
  try {
    const { jobId } = await client.submitJob(req)
    for await (const e of client.watchJob(jobId, { timeoutMs: TIMEOUT_MS })) if (e.job !== null) break
  } catch (err) {
    say(`refused, as intended or not: ${(err as Error).message.split('\n')[0]}`)
  }
}

async function main (): Promise<void> {
  const baseDir = await mkdtemp(path.join(os.tmpdir(), 'inframind-dashboard-shot-'))
  let net: Devnet | undefined
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
  try {
    net = await startDevnet({ nodes: 4, validators: 1, baseDir, warmOnFirstWorker: false, progress: say })
    const info = JSON.parse(await readFile(path.join(net.gateway.dir, NODE_FILE), 'utf8')) as { dashboard?: string }
    if (info.dashboard === undefined || info.dashboard === '') throw new Error('the gateway has no dashboard (dashboard.listen is "")')
    say(`gateway dashboard at ${info.dashboard}`)
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 })
    await page.goto(info.dashboard, { timeout: TIMEOUT_MS })
    await page.waitForSelector('#live[data-state="live"]', { timeout: TIMEOUT_MS })

    const client = connectNode(net.gateway.publicAddr)
    try {
      // Waves over ~30 s: several chart points, jobs in every state the list shows.
      for (let wave = 0; wave < 6; wave++) {
        await Promise.all([
          ...Array.from({ length: 2 + (wave % 3) }, async (_, i) => await run(client, { containers: ['echo'], input: bytes(`wave ${wave} job ${i}`) })),
          run(client, { containers: ['sentiment'], input: bytes(JSON.stringify({ text: wave % 2 === 0 ? 'What a great result!' : 'This was slow and disappointing.' })) })
        ])
        if (wave === 2) await run(client, { containerId: 'no-such-container', input: bytes('x') })
        await sleep(4_000)
      }
      await run(client, { jobId: 'chain-echo-sentiment', containers: ['echo', 'sentiment'], input: bytes('This chain works beautifully.') })
      await run(client, { containers: ['echo'], input: bytes('check me'), verification: { method: 'reexecute', validators: 1, quorum: 1 }, deadlineMs: TIMEOUT_MS })
    } finally {
      client.close()
    }

    // A snapshot after the last job (counters, reputation), then the chain's detail.
    await page.waitForSelector('tr[data-job-id="chain-echo-sentiment"][data-state="success"]', { timeout: TIMEOUT_MS })
    await page.locator('#reputation tr[data-node]').first().waitFor({ timeout: TIMEOUT_MS })
    await page.evaluate('location.hash = "#job=chain-echo-sentiment"')
    await page.waitForSelector('#job-detail table.steps tr[data-container="sentiment"]', { timeout: TIMEOUT_MS })
    await sleep(2_500)
    await page.screenshot({ path: OUT, fullPage: true })
    say(`wrote ${path.relative(process.cwd(), OUT)}`)
  } finally {
    await browser.close()
    await net?.stop()
    await rm(baseDir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  say(`failed: ${(err as Error).stack ?? String(err)}`)
  process.exitCode = 1
})
