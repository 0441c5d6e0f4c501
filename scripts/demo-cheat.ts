/**
 * `npm run demo -- --cheat`: a worker whose echo container tampers with its output is caught. It
 * serves `echo` from the same image (so the gateway's digest pin passes) with another command, so
 * its receipts are genuine: they prove who computed the result, not that it is right. Verified echo
 * jobs run one at a time, shown live, until it has been given one and a few more have run; every
 * line printed is read from the job records and from the scheduler's reputation, never assumed.
 */
import { createHash } from 'node:crypto'
import { envelopeFromWire } from '../src/api/convert.ts'
import type { ControlClient, NodeClient } from '../src/api/client.ts'
import type { ExtraWorker } from '../src/cli/devnet.ts'
import { stateName, table } from '../src/cli/format.ts'
import type { Job as WireJob } from '../src/protocol/index.ts'
import { verifyReceipt } from '../src/receipt/index.ts'
import { verifyCertificate } from '../src/verification/index.ts'

export const CHEAT_NAME = 'cheat'
/** What the cheat appends to every output. */
const TAMPER = 'tampered'

/** The cheat serves only echo: config.yaml's entry (image, digest, deterministic: true) with another command. */
export const CHEAT_WORKER: ExtraWorker = {
  name: CHEAT_NAME,
  containers: (oneshot) => oneshot.filter((c) => c.id === 'echo').map((c) => ({ ...c, command: ['sh', '-c', `cat; echo ${TAMPER}`] }))
}

/** Jobs run after the one the cheat was given, to show where work goes once it is excluded. */
const JOBS_AFTER_CAUGHT = 2
/** Workers take turns, so the cheat gets one of the first few; give up after this many. */
const MAX_JOBS = 8
/** A disputed job waits for every validator's re-run: a generous deadline on a busy machine. */
const JOB_DEADLINE_MS = 120_000

export interface CheatContext {
  client: NodeClient
  control: ControlClient
  /** The cheat's own public API: what it computed, from its own job store. */
  cheatClient: NodeClient
  cheatId: string
  /** Validators in the devnet: each verified job asks all of them. */
  validators: number
  /** Node ids in a text replaced by the devnet's names. */
  named: (text: string) => string
  out: (text: string) => void
}

export interface CheatRun {
  jobs: WireJob[]
  /** Index in `jobs` of the first job assigned to the cheat; -1 when it was given none. */
  caughtAt: number
  problems: string[]
}

/** A table cell of at most this many characters (the live log above it has the whole text). */
const CELL_MAX = 64
const clip = (text: string): string => text.length > CELL_MAX ? `${text.slice(0, CELL_MAX - 1)}…` : text

/** "certified after 1 disputed result(s) from cheat", "incomplete: <reason>", "certified". */
function verification (job: WireJob, named: (text: string) => string): string {
  const state = job.verificationState || 'not verified'
  const reason = named(job.verificationReason)
  return reason === '' ? state : reason.startsWith(state) ? reason : `${state}: ${reason}`
}

const assignedTo = (job: WireJob, nodeId: string): boolean => job.history.some((h) => h.detail === `assigned to ${nodeId}`)
const acceptedBy = (job: WireJob): string[] => job.history.filter((h) => h.detail.startsWith('accepted by ')).map((h) => h.detail.slice('accepted by '.length).split(' ')[0] as string)
/** Who ran it, in order: the workers that accepted it, then the validator whose output became the result (after a dispute). */
const ranOn = (job: WireJob): string[] => {
  const ran = acceptedBy(job)
  return job.workerId !== '' && ran.at(-1) !== job.workerId ? [...ran, job.workerId] : ran
}
/** The job met a worker whose result the validators disputed. */
const disputed = (job: WireJob): boolean => job.verificationReason.includes('disputed result')

/** Runs verified echo jobs one at a time, printing each job's progress as it happens, then a table of them. */
export async function catchTheCheat (ctx: CheatContext): Promise<CheatRun> {
  const { client, named, out } = ctx
  // Every validator re-runs each job: when they all get the same output and the cheat another, theirs
  // is the certified result (a re-run on another worker is only needed when they disagree among themselves).
  const v = ctx.validators
  const policy = { method: 'reexecute' as const, validators: v, quorum: v }
  out(`\ncatching a cheat: worker "${CHEAT_NAME}" serves echo from the same image, but its command appends "${TAMPER}" to the output; its receipts are genuine.\n`)
  out(`verified echo jobs (reexecute, ${v} of ${v} validator(s) must agree), one at a time, until the cheat has been given one and ${JOBS_AFTER_CAUGHT} more have run:\n`)
  const jobs: WireJob[] = []
  const problems: string[] = []
  let caughtAt = -1
  for (let i = 0; i < MAX_JOBS && (caughtAt < 0 || i <= caughtAt + JOBS_AFTER_CAUGHT); i++) {
    const input = `truth ${i + 1}`
    const t0 = Date.now()
    const { jobId } = await client.submitJob({ containers: ['echo'], input: new TextEncoder().encode(input), deadlineMs: JOB_DEADLINE_MS, verification: policy })
    out(`\njob ${i + 1}: echo "${input}" (${jobId})\n`)
    let job: WireJob | undefined
    let last = ''
    for await (const event of client.watchJob(jobId, { timeoutMs: JOB_DEADLINE_MS + 30_000 })) {
      const line = `${stateName(event.state)}: ${named(event.detail)}`
      if (line !== last) out(`  ${`+${((event.atMs - t0) / 1000).toFixed(2)} s`.padStart(9)}  ${line}\n`)
      last = line
      if (event.job !== null) job = event.job
    }
    if (job === undefined) {
      problems.push(`job ${i + 1}: the watch ended without a result`)
      break
    }
    jobs.push(job)
    out(`  → ${outcome(job, input, named)}\n`)
    if (caughtAt < 0 && assignedTo(job, ctx.cheatId)) {
      caughtAt = i
      out(`  ${await cheatsOwnRecord(ctx, job, input)}\n`)
    }
  }

  out('\n' + table(['JOB', 'INPUT', 'RAN ON', 'VERIFICATION', 'OUTPUT', 'CERTIFICATE'], jobs.map((job, i) => {
    const input = `truth ${i + 1}`
    const text = Buffer.from(job.output).toString('utf8')
    return [
      String(i + 1), input, ranOn(job).map(named).join(' → ') || '-', clip(verification(job, named)),
      text === input ? 'the input, untouched ✓' : `${JSON.stringify(text)} ✗`,
      certificateCell(job, named)
    ]
  })))

  for (const [i, job] of jobs.entries()) {
    const input = `truth ${i + 1}`
    if (stateName(job.state) !== 'success') problems.push(`job ${i + 1} ${stateName(job.state)}: ${job.error}`)
    else if (Buffer.from(job.output).toString('utf8') !== input) problems.push(`job ${i + 1} returned another output than its input`)
    if (job.verificationState !== 'certified') problems.push(`job ${i + 1} is ${job.verificationState || 'not verified'}: ${named(job.verificationReason)}`)
    else if (!certificateOf(job).valid) problems.push(`job ${i + 1}'s certificate does not verify`)
    if (job.workerId === ctx.cheatId) problems.push(`job ${i + 1}'s result is the cheat's`)
  }
  if (caughtAt < 0) problems.push(`the cheat was given none of the ${jobs.length} jobs, so it was not caught`)
  else if (!disputed(jobs[caughtAt]!)) problems.push(`job ${caughtAt + 1} went to the cheat but was not disputed`)
  return { jobs, caughtAt, problems }
}

/** The scheduler's record of each worker it used, as `Control.GetReputation` (and `infra peers`' SCORE) show it. */
export async function showReputation (ctx: CheatContext): Promise<string[]> {
  const { nodes } = await ctx.control.getReputation()
  const now = Date.now()
  const sorted = [...nodes].sort((a, b) => ctx.named(a.nodeId).localeCompare(ctx.named(b.nodeId)))
  ctx.out(`\nthe gateway's scheduler's record of each node it assigned work to (Control.GetReputation; the SCORE column of infra peers):\n`)
  ctx.out(table(['NODE', 'SCORE', 'SUCCESSES', 'FAILURES', 'DISPUTES LOST', 'EXCLUDED'], sorted.map((r) => [
    ctx.named(r.nodeId), r.score.toFixed(2), String(r.successes), String(r.failures), String(r.disputesLost),
    r.excludedUntilMs > now ? `until ${new Date(r.excludedUntilMs).toLocaleTimeString('en-GB')} (${Math.round((r.excludedUntilMs - now) / 60_000)} min more; exclusion no. ${r.exclusions})` : 'no'
  ])))
  const problems: string[] = []
  const cheat = nodes.find((r) => r.nodeId === ctx.cheatId)
  if (cheat === undefined || cheat.disputesLost < 1) problems.push('the scheduler has no lost dispute on record for the cheat')
  else if (cheat.excludedUntilMs <= now) problems.push('the cheat is not excluded')
  for (const r of nodes) if (r.nodeId !== ctx.cheatId && r.disputesLost > 0) problems.push(`${ctx.named(r.nodeId)} (honest) lost ${r.disputesLost} dispute(s)`)
  return problems
}

/** Every job after the cheat was caught, checked for any assignment to it. */
export function laterJobs (ctx: CheatContext, later: Array<{ label: string, job: WireJob }>): string[] {
  const toCheat = later.filter(({ job }) => assignedTo(job, ctx.cheatId))
  ctx.out(`\nafter its exclusion: ${later.length} more jobs ran (${later.map((l) => l.label).join(', ')}); ${toCheat.length === 0 ? 'none of them was assigned to the cheat ✓' : `${toCheat.length} were assigned to the cheat ✗ (${toCheat.map((l) => l.label).join(', ')})`}\n`)
  return toCheat.map((l) => `${l.label} was assigned to the cheat after its exclusion`)
}

function certificateOf (job: WireJob): ReturnType<typeof verifyCertificate> {
  if (job.certificate === null) return { valid: false, code: 'MALFORMED_CERTIFICATE', reason: 'no certificate' }
  return verifyCertificate(envelopeFromWire(job.certificate), { output: new Uint8Array(job.output) })
}

function certificateCell (job: WireJob, named: (text: string) => string): string {
  if (job.certificate === null) return '-'
  const c = certificateOf(job)
  return c.valid ? `valid ✓ (${c.attestations.map((a) => named(a.validatorId)).join(', ')})` : `INVALID: ${c.code}`
}

function outcome (job: WireJob, input: string, named: (text: string) => string): string {
  const state = stateName(job.state)
  if (state !== 'success') return `${state}: [${job.errorCode}] ${named(job.error)}`
  const text = Buffer.from(job.output).toString('utf8')
  const verified = job.verificationState === 'certified'
    ? `${verification(job, named)}; certificate verified offline: ${certificateCell(job, named)}`
    : verification(job, named)
  return `result from ${named(job.workerId)}: ${text === input ? `"${text}", the input untouched` : `${JSON.stringify(text)}, NOT the input`}; ${verified}`
}

/**
 * The cheat's side of a disputed job, from its own node: a worker shows no output bytes of a job it
 * ran for a scheduler, but its signed receipt says which output it vouched for.
 */
async function cheatsOwnRecord (ctx: CheatContext, job: WireJob, input: string): Promise<string> {
  try {
    const own = await ctx.cheatClient.getJob(job.jobId, { timeoutMs: 10_000 })
    if (own.receipt === null) return `the cheat's own record of this job has no receipt (${stateName(own.state)})`
    const checked = verifyReceipt(envelopeFromWire(own.receipt))
    if (!checked.valid) return `the cheat's own receipt for this job does not verify: ${checked.reason}`
    const hex = (b: Uint8Array): string => `${Buffer.from(b).toString('hex').slice(0, 16)}…`
    const honest = createHash('sha256').update(input).digest()
    const same = Buffer.from(checked.receipt.outputHash).equals(honest)
    return `the cheat's own receipt for this job (GetJob on its node), signed by ${ctx.named(checked.receipt.workerId)}: output sha256 ${hex(checked.receipt.outputHash)}` +
      `${same ? ' = ' : ' ≠ '}sha256 of "${input}" ${hex(honest)}; the client got ${Buffer.from(job.output).toString('utf8') === input ? `the input back, from ${ctx.named(job.workerId)}` : 'another output'}`
  } catch (err) {
    return `the cheat's own record of this job could not be read: ${(err as Error).message}`
  }
}
