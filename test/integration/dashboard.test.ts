import test, { type ExecutionContext } from 'ava'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { chromium, type Browser, type Page } from 'playwright-core'
import { containerYaml, startFor, startTestNode, text, waitJob, type TestNode } from '../helpers/node.ts'
import { NodeStartError } from '../../src/node.ts'
import { DashboardListenError } from '../../src/dashboard/index.ts'

// The dashboard of a real node (real Docker, real gRPC, real LevelDB) in a real headless Chromium
// (Debian's package, installed by scripts/browser.sh; playwright-core drives it, nothing is downloaded).
// Every wait is on a DOM condition with a generous timeout: a busy machine is slow, never wrong.

const CHROMIUM = process.env.INFRAMIND_CHROMIUM ?? '/usr/bin/chromium'
const DOM_TIMEOUT_MS = 90_000
const SECRET = 'client-secret-input-5f1d'

const CONTAINERS = [
  containerYaml('echo'),
  containerYaml('shout', { command: ['sed', 's/^/shout:/'] }),
  containerYaml('lan-only', { allowed_ips: ['10.0.0.0/8'] }),
  // Fails, and writes markup to stderr: the page must show neither the markup nor run it.
  containerYaml('broken', { command: ['sh', '-c', 'cat >/dev/null; echo "<img src=x id=pwned onerror=alert(1)>" >&2; exit 3'] })
]

async function browserFor (t: ExecutionContext): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run "bash scripts/browser.sh" (or set INFRAMIND_CHROMIUM)`)
  // --no-sandbox: tests run as root in CI, where Chromium's own sandbox refuses to start.
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
  t.teardown(async () => await browser.close())
  return browser
}

/** A page on the node's dashboard, with the errors it reports (script errors, CSP violations) collected. */
async function openDashboard (t: ExecutionContext, n: TestNode): Promise<{ page: Page, errors: string[] }> {
  const browser = await browserFor(t)
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`))
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(`console: ${msg.text()}`) })
  page.on('dialog', (d) => { errors.push(`dialog: ${d.message()}`); d.dismiss().catch(() => {}) })
  await page.goto(dashboardUrl(n), { timeout: DOM_TIMEOUT_MS })
  await page.waitForSelector(`[data-node-id="${n.node.identity.nodeId}"]`, { timeout: DOM_TIMEOUT_MS })
  await page.waitForSelector('#live[data-state="live"]', { timeout: DOM_TIMEOUT_MS })
  return { page, errors }
}

function dashboardUrl (n: TestNode): string {
  const url = n.node.dashboard?.url() ?? ''
  if (url === '') throw new Error('the node has no dashboard')
  return url
}

async function start (t: ExecutionContext): Promise<TestNode> {
  return await startFor(t, { containers: CONTAINERS, dashboard: { listen: '127.0.0.1:0' } })
}

test('a job submitted while the page is open appears, turns to success and shows its steps; the page holds no control', async (t) => {
  const n = await start(t)
  const { page, errors } = await openDashboard(t, n)

  // Submitted through gRPC after the page loaded: only the event stream can bring it.
  const jobId = 'dash-chain-1'
  await n.client.submitJob({ jobId, containers: ['echo', 'shout'], input: text(SECRET) })
  await page.waitForSelector(`tr[data-job-id="${jobId}"]`, { timeout: DOM_TIMEOUT_MS })
  await page.waitForSelector(`tr[data-job-id="${jobId}"][data-state="success"]`, { timeout: DOM_TIMEOUT_MS })
  const row = await page.textContent(`tr[data-job-id="${jobId}"]`) ?? ''
  t.true(row.includes('echo → shout'), row)
  t.true(row.includes('signed'), `the receipt column says the job has a signed receipt: ${row}`)
  t.true(row.includes('this node'), `the worker column names this node: ${row}`)

  // The detail view lists both steps, with their output hashes (never their output).
  await page.click(`tr[data-job-id="${jobId}"] a`)
  await page.waitForSelector('#job-detail table.steps tr[data-container="echo"][data-status="success"]', { timeout: DOM_TIMEOUT_MS })
  await page.waitForSelector('#job-detail table.steps tr[data-container="shout"][data-status="success"]', { timeout: DOM_TIMEOUT_MS })
  const detail = await page.textContent('#job-detail') ?? ''
  t.true(detail.includes('Steps (2 of 2)'), detail)
  const job = await waitJob(n.client, jobId)
  const outputHash = Buffer.from(job.steps[1].outputHash).toString('hex').slice(0, 12)
  t.true(detail.includes(outputHash), 'the last step shows the start of its output sha256')

  // Read-only: no form, button, input or anything editable; links stay inside the page.
  t.is(await page.locator('form, button, input, select, textarea, [contenteditable], [onclick]').count(), 0)
  const hrefs = await page.$$eval('a', (as) => as.map((a) => a.getAttribute('href') ?? ''))
  t.true(hrefs.length > 0 && hrefs.every((h) => h.startsWith('#')), hrefs.join(' '))
  // The page ran without a script error or a CSP violation.
  t.deepEqual(errors, [])
  // A POST from the page itself is refused.
  const post = await page.evaluate(async () => {
    const res = await fetch('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"containers":["echo"]}' })
    return { status: res.status, allow: res.headers.get('allow'), body: await res.json() as { error: { code: string } } }
  })
  t.is(post.status, 405)
  t.is(post.allow, 'GET, HEAD')
  t.is(post.body.error.code, 'METHOD_NOT_ALLOWED')

  // The client's data is nowhere on the page (echo's output is its input).
  t.false((await page.content()).includes(SECRET))
})

test('a Guardian refusal and a failing job with markup in its stderr show up live, as text only', async (t) => {
  const n = await start(t)
  const { page, errors } = await openDashboard(t, n)

  await t.throwsAsync(n.client.submitJob({ containerId: 'lan-only', input: text('x') }))
  await page.locator('#refusals tr', { hasText: 'lan-only' }).waitFor({ timeout: DOM_TIMEOUT_MS })
  const refusalRow = await page.textContent('#refusals') ?? ''
  t.true(refusalRow.includes('IP_NOT_ALLOWED') && refusalRow.includes('PERMISSION_DENIED'), refusalRow)
  // The counts by rule come with the next snapshot.
  await page.locator('#refusal-counts', { hasText: 'IP_NOT_ALLOWED: 1' }).waitFor({ timeout: DOM_TIMEOUT_MS })

  const jobId = 'dash-broken-1'
  await n.client.submitJob({ jobId, containerId: 'broken', input: text('x') })
  await page.waitForSelector(`tr[data-job-id="${jobId}"][data-state="failed"]`, { timeout: DOM_TIMEOUT_MS })
  await page.click(`tr[data-job-id="${jobId}"] a`)
  await page.waitForSelector('#job-detail table.steps tr[data-container="broken"][data-status="failed"]', { timeout: DOM_TIMEOUT_MS })
  // The stderr tail (which may echo a client's data) is cut off, and nothing of it became markup.
  t.is(await page.locator('#pwned, img').count(), 0)
  t.false((await page.content()).includes('onerror'))
  t.deepEqual(errors, [])
})

/** A raw GET with the headers given (fetch may not set Host). */
async function rawGet (url: string, headers: Record<string, string>, method = 'GET'): Promise<{ status: number, headers: http.IncomingHttpHeaders, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

test('every answer carries the CSP; only loopback Host names, same-site reads and GET are served', async (t) => {
  const n = await start(t)
  const url = dashboardUrl(n)
  const port = new URL(url).port

  const page = await fetch(url)
  t.is(page.status, 200)
  const csp = page.headers.get('content-security-policy') ?? ''
  for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "form-action 'none'", "base-uri 'none'"]) {
    t.true(csp.includes(directive), `CSP has ${directive}: ${csp}`)
  }
  t.false(csp.includes('unsafe-inline'))
  t.false(csp.includes('unsafe-eval'))
  t.is(page.headers.get('x-content-type-options'), 'nosniff')

  for (const path of ['app.js', 'vendor/uPlot.esm.js', 'api/node', 'api/nope']) {
    t.is((await fetch(url + path)).headers.get('content-security-policy'), csp, path)
  }

  // DNS rebinding: a name that resolves to 127.0.0.1 is still not a loopback name.
  const rebound = await rawGet(url + 'api/jobs', { host: `attacker.example:${port}` })
  t.is(rebound.status, 403)
  t.is((JSON.parse(rebound.body) as { error: { code: string } }).error.code, 'HOST_NOT_ALLOWED')
  t.is((await rawGet(url + 'api/jobs', { host: `localhost:${port}` })).status, 200)
  t.is((await rawGet(url + 'api/jobs', { host: `[::1]:${port}` })).status, 200)
  // Another site's script reading the API is refused; a link to the page itself still opens it.
  t.is((await rawGet(url + 'api/jobs', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' })).status, 403)
  t.is((await rawGet(url, { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' })).status, 200)

  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    const r = await rawGet(url + 'api/jobs', { 'content-length': '0' }, method)
    t.is(r.status, 405, method)
  }
  // Bad input gets a 4xx that says what to fix.
  const badLimit = await fetch(url + 'api/jobs?limit=100000')
  t.is(badLimit.status, 400)
  t.regex(((await badLimit.json()) as { error: { message: string } }).error.message, /limit must be an integer from 1 to 500/)
  t.is((await fetch(url + 'api/jobs/no-such-job')).status, 404)
  t.is((await fetch(url + 'api/jobs/' + encodeURIComponent('bad id!'))).status, 400)
})

test('a taken dashboard port stops the node from starting, with the key to change; stop() ends open event streams', async (t) => {
  const holder = net.createServer()
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', () => resolve()))
  t.teardown(async () => await new Promise<void>((resolve) => holder.close(() => resolve())))
  const port = (holder.address() as net.AddressInfo).port
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-dashboard-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  const err = await t.throwsAsync(startTestNode({ dir, dashboard: { listen: `127.0.0.1:${port}` } }))
  t.true(err instanceof NodeStartError)
  t.is((err as NodeStartError).component, 'dashboard')
  const cause = (err as NodeStartError).cause
  t.true(cause instanceof DashboardListenError)
  t.is((cause as DashboardListenError).code, 'DASHBOARD_LISTEN_FAILED')
  t.regex((cause as Error).message, new RegExp(`port ${port} is in use.*dashboard\\.listen`))

  // A node that did start: its event stream says hello with the retry hint, and ends when the node stops.
  const n = await start(t)
  const ended = await new Promise<{ status: number, type: string, ended: Promise<string> }>((resolve, reject) => {
    http.get(dashboardUrl(n) + 'api/events', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      const done = new Promise<string>((resolve) => { res.on('close', () => resolve(body)) })
      resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), ended: done })
    }).on('error', reject)
  })
  t.is(ended.status, 200)
  t.is(ended.type, 'text/event-stream; charset=utf-8')
  await n.stop()
  t.regex(await ended.ended, /^retry: \d+\n\n/)
})
