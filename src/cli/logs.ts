/**
 * `infra logs JOB [-f]` and `infra submit --follow`: a job's events (queued, each step, verification,
 * the end) and its output. Events go to stderr and the output, byte for byte, to stdout (or
 * --output-file), so `infra logs -f JOB > out` keeps the output alone. -f follows a running job live
 * (the output as the container writes it: follow.ts over StreamJobOutput) until it ends. --json
 * prints one JSON object a line on stdout instead: {"type":"event"}, {"type":"output"} (live chunks,
 * base64 and, when UTF-8, text) and a last {"type":"job"} (or {"type":"end"} when following).
 */
import { createWriteStream } from 'node:fs'
import { Writable } from 'node:stream'
import { connectNode, type NodeClient } from '../api/client.ts'
import type { Job, StateChange } from '../protocol/generated.ts'
import { str, type ParsedArgs } from './args.ts'
import { endpoints, jobToJson, reportRpcError, timeoutMs } from './client-commands.ts'
import { followJob, exitCodeOf, type FollowResult } from './follow.ts'
import { printable, stateName } from './format.ts'
import type { CliIo } from './io.ts'

type Change = Pick<StateChange, 'atMs' | 'state' | 'detail'>

const finished = (state: string): boolean => ['success', 'failed'].includes(stateName(state))
const key = (h: Change): string => `${h.atMs} ${h.state} ${h.detail}`

function printer (jobId: string, json: boolean, io: CliIo): (h: Change) => void {
  return (h) => {
    if (json) io.out(JSON.stringify({ type: 'event', job_id: jobId, at: new Date(h.atMs).toISOString(), state: stateName(h.state), detail: h.detail }) + '\n')
    else io.err(`${new Date(h.atMs).toISOString()}  ${stateName(h.state).padEnd(8)} ${h.detail}\n`)
  }
}

/** Where the output bytes go: --output-file, the raw stdout, or (in-process runs) text through io.out. */
function outputSink (jobId: string, args: ParsedArgs, io: CliIo): Writable {
  const file = str(args, 'output-file')
  if (file !== undefined) return createWriteStream(file)
  if (args.flags.has('json')) {
    return new Writable({
      write (chunk: Buffer, _enc, done) {
        const text = printable(chunk)
        io.out(JSON.stringify({ type: 'output', job_id: jobId, ...(text !== undefined ? { text } : {}), data_base64: chunk.toString('base64') }) + '\n')
        done()
      }
    })
  }
  if (io.stdout !== undefined) return io.stdout as Writable
  const decoder = new TextDecoder()
  return new Writable({
    write (chunk: Buffer, _enc, done) { io.out(decoder.decode(chunk, { stream: true })); done() },
    final (done) { io.out(decoder.decode()); done() }
  })
}

async function closeSink (sink: Writable, io: CliIo): Promise<void> {
  if (sink === io.stdout) return
  await new Promise<void>((resolve, reject) => sink.end((err?: Error | null) => err != null ? reject(err) : resolve()))
}

/**
 * Follows a job to the user: its events (those after `seen`) on stderr, its output as it is produced,
 * and how it ended. Exit 0 only for a success whose whole output was shown (follow.ts's rule).
 */
export async function followToUser (client: NodeClient, jobId: string, args: ParsedArgs, io: CliIo, seen = new Set<string>()): Promise<number> {
  const json = args.flags.has('json')
  const print = printer(jobId, json, io)
  const stop = new AbortController()
  // Events and output are two streams; the output's end is the job's end, then the events stop too.
  const events = (async () => {
    try {
      for await (const event of client.watchJob(jobId, { signal: stop.signal })) {
        if (!seen.has(key(event))) { seen.add(key(event)); print(event) }
      }
    } catch {
      // Cancelled once the output ended, or the node went away (the output side reports that).
    }
  })()
  const sink = outputSink(jobId, args, io)
  let result: FollowResult
  try {
    result = await followJob(client, jobId, { out: sink })
  } finally {
    await closeSink(sink, io)
    // Let the terminal event print when it is already on its way; a job never waits for it.
    await Promise.race([events, new Promise((resolve) => setTimeout(resolve, 200))])
    stop.abort()
    await events
  }
  if (json) {
    io.out(JSON.stringify({ type: 'end', job_id: jobId, state: result.state, error_code: result.errorCode, error: result.error, output_bytes: result.bytes, complete: result.complete, verification_state: result.verificationState }) + '\n')
  } else if (result.state === 'failed') {
    io.err(`job ${jobId} failed [${result.errorCode}]: ${result.error}\n`)
  } else if (!result.complete) {
    io.err(`job ${jobId}: what was shown is not its whole output (${result.bytes} bytes); fetch it with \`infra job ${jobId} --output-file FILE\`\n`)
  }
  return exitCodeOf(result)
}

/** `infra logs JOB`: what happened so far and the output; with -f, followed until the job ends. */
export async function runLogs (args: ParsedArgs, io: CliIo): Promise<number> {
  const id = args.positionals[0]
  const json = args.flags.has('json')
  const ep = await endpoints(args, io)
  const client = connectNode(ep.public, { maxMessageBytes: ep.maxMessageBytes })
  try {
    const job = await client.getJob(id, { timeoutMs: timeoutMs(args) })
    const print = printer(id, json, io)
    for (const h of job.history) print(h)
    if (args.flags.has('follow') && !finished(job.state)) return await followToUser(client, id, args, io, new Set(job.history.map(key)))
    return await finish(job, args, io)
  } catch (err) {
    return reportRpcError(err, ep.public, io)
  } finally {
    client.close()
  }
}

/** The end of the log of a finished (or, without -f, any) job: its output so far and how it ended. */
async function finish (job: Job, args: ParsedArgs, io: CliIo): Promise<number> {
  const failed = stateName(job.state) === 'failed'
  if (args.flags.has('json')) {
    io.out(JSON.stringify({ type: 'job', ...jobToJson(job) }) + '\n')
    return failed ? 1 : 0
  }
  if (job.output.byteLength > 0) {
    const sink = outputSink(job.jobId, args, io)
    sink.write(Buffer.from(job.output))
    await closeSink(sink, io)
  }
  if (failed) io.err(`job ${job.jobId} failed [${job.errorCode}]: ${job.error}\n`)
  return failed ? 1 : 0
}
