/**
 * Progress for the waits of the CLI: a job's steps (`submit --wait`, `run`, `logs -f`) and containers
 * getting their images and starting (`containers --wait`): a container being pulled shows the bytes
 * of its image download, any other its state. Bars (cli-progress) only on a TTY; to a pipe or a log
 * file, one plain line per change, so CI logs stay readable; nothing at all under --json (the caller
 * passes `quiet`). cli-progress is loaded only when a bar is drawn.
 */
import type { GenericFormatter } from 'cli-progress'
import { formatBytes, formatDuration, stateName } from './format.ts'

export interface JobProgress {
  /** A job event: its wire or plain state and the event's detail ("step 2/3: resize", "verifying: ..."). */
  update(state: string, detail: string): void
  stop(finalLine?: string): void
}

/** Bytes of an image download; `totalBytes` 0 = not known yet. */
export interface PullBytes { doneBytes: number, totalBytes: number }

/** `pull`: set while the container is `pulling` and its download has started (ContainerInfo.pull_*_bytes). */
export interface ContainerRow { id: string, state: string, image: string, note: string, pull?: PullBytes }

export interface ContainerProgress {
  update(rows: ContainerRow[]): void
  stop(finalLine?: string): void
}

/** "step 2/3: resize" → [2, 3]; the executor names each step of a chain so. */
export function stepOf (detail: string): [number, number] | undefined {
  const m = /\bstep (\d+)\/(\d+)\b/.exec(detail)
  return m === null ? undefined : [Number(m[1]), Number(m[2])]
}

/**
 * How far a job is, in steps: a running step counts half, a finished job all of them. A one-step
 * job is pending (0), running (0.5 of 1) or done (1).
 */
export function jobFraction (state: string, detail: string, steps: number, last: number): number {
  const s = stateName(state)
  if (s === 'success' || s === 'failed') return steps
  const step = stepOf(detail)
  if (step !== undefined) return Math.max(last, step[0] - 0.5)
  if (s === 'running') return Math.max(last, 0.5)
  return last
}

/** How far a container is towards serving: image present, then (services) started, then healthy. */
export function containerStage (state: string): { at: number, of: number, done: boolean, failed: boolean } {
  switch (state) {
    case 'missing': return { at: 0, of: 1, done: false, failed: false }
    case 'ready': return { at: 1, of: 1, done: true, failed: false }
    case 'mesh': return { at: 1, of: 1, done: true, failed: false }
    case 'pulling': return { at: 0, of: 3, done: false, failed: false }
    case 'starting': return { at: 1, of: 3, done: false, failed: false }
    case 'restarting': return { at: 1, of: 3, done: false, failed: false }
    case 'healthy': return { at: 3, of: 3, done: true, failed: false }
    case 'unhealthy': return { at: 2, of: 3, done: false, failed: false }
    case 'stopped': return { at: 0, of: 3, done: false, failed: true }
    case 'failed': return { at: 0, of: 3, done: false, failed: true }
    default: return { at: 0, of: 1, done: false, failed: false }
  }
}

/** "12.0 MiB of 40.0 MiB (30%)", or "12.0 MiB so far" while the total is unknown. */
export function pullText (pull: PullBytes): string {
  if (pull.totalBytes <= 0) return `${formatBytes(pull.doneBytes)} so far`
  const pct = Math.floor(100 * Math.min(pull.doneBytes, pull.totalBytes) / pull.totalBytes)
  return `${formatBytes(pull.doneBytes)} of ${formatBytes(pull.totalBytes)} (${pct}%)`
}

/**
 * Which step of a download a plain line (off a TTY) is printed at: each tenth of a known total, each
 * doubling past 1 MiB of an unknown one. A log gets a dozen lines per image, not one per poll.
 */
export function pullStep (pull: PullBytes): number {
  if (pull.totalBytes > 0) return Math.floor(10 * Math.min(pull.doneBytes, pull.totalBytes) / pull.totalBytes)
  const mib = pull.doneBytes / (1024 * 1024)
  return mib < 1 ? 0 : 1 + Math.floor(Math.log2(mib))
}

const BAR = { barCompleteChar: '█', barIncompleteChar: '░', barsize: 24, hideCursor: true, clearOnComplete: true, fps: 8 }

async function barsModule (): Promise<typeof import('cli-progress')> {
  const mod = await import('cli-progress') as unknown as { default?: typeof import('cli-progress') }
  return mod.default ?? (mod as unknown as typeof import('cli-progress'))
}

/** A bar for one job of `steps` containers; plain lines off a TTY; nothing when quiet. */
export async function jobProgress (stream: NodeJS.WriteStream, jobId: string, steps: number, opts: { quiet?: boolean } = {}): Promise<JobProgress> {
  if (opts.quiet === true) return { update: () => {}, stop: () => {} }
  const total = Math.max(1, steps)
  if (stream.isTTY !== true) {
    let last = ''
    return {
      update: (state, detail) => {
        const line = `job ${jobId}: ${stateName(state)}${detail !== '' ? ` (${detail})` : ''}`
        if (line !== last) { last = line; stream.write(`${line}\n`) }
      },
      stop: (finalLine) => { if (finalLine !== undefined) stream.write(`${finalLine}\n`) }
    }
  }
  const { SingleBar } = await barsModule()
  const format: GenericFormatter = (options, params, payload: { state: string, detail: string }) => {
    const filled = Math.round(params.progress * (options.barsize ?? 24))
    const bar = (options.barCompleteString ?? '').slice(0, filled) + (options.barIncompleteString ?? '').slice(0, (options.barsize ?? 24) - filled)
    const done = Math.floor(params.value)
    return `job ${jobId} ${bar} ${done}/${params.total} ${payload.state}${payload.detail !== '' ? ` ${payload.detail}` : ''} ${formatDuration(Date.now() - params.startTime)}`
  }
  const bar = new SingleBar({ ...BAR, stream, format })
  bar.start(total, 0, { state: 'pending', detail: '' })
  let value = 0
  return {
    update: (state, detail) => {
      value = jobFraction(state, detail, total, value)
      bar.update(value, { state: stateName(state), detail: detail.slice(0, 60) })
    },
    stop: (finalLine) => {
      bar.stop()
      if (finalLine !== undefined) stream.write(`${finalLine}\n`)
    }
  }
}

/** The width of the moving block of a download whose size is not known yet. */
const MARQUEE = 4

/**
 * One bar per container: the bytes of its image download while it is pulled (the bar fills to the
 * total; a block moves back and forth while the total is unknown), else its stage (image fetched,
 * service started, healthy). Plain lines off a TTY.
 */
export async function containerProgress (stream: NodeJS.WriteStream, opts: { quiet?: boolean } = {}): Promise<ContainerProgress> {
  if (opts.quiet === true) return { update: () => {}, stop: () => {} }
  if (stream.isTTY !== true) {
    const seen = new Map<string, string>()
    return {
      update: (rows) => {
        for (const r of rows) {
          const key = `${r.state}${r.note !== '' ? ` (${r.note})` : ''}`
          const step = r.pull === undefined ? '' : `#${pullStep(r.pull)}`
          if (seen.get(r.id) === key + step) continue
          seen.set(r.id, key + step)
          stream.write(`container ${r.id}: ${r.state}${r.pull !== undefined ? ` ${pullText(r.pull)}` : ''}${r.note !== '' ? ` (${r.note})` : ''}\n`)
        }
      },
      stop: (finalLine) => { if (finalLine !== undefined) stream.write(`${finalLine}\n`) }
    }
  }
  const { MultiBar } = await barsModule()
  const width = { id: 0 }
  const format: GenericFormatter = (options, params, payload: { id: string, state: string, image: string, note: string, bytes: string, unsized: boolean }) => {
    const size = options.barsize ?? 24
    const complete = options.barCompleteString ?? ''
    const incomplete = options.barIncompleteString ?? ''
    let bar: string
    if (payload.unsized) {
      // No total to fill towards: a block that moves on every redraw says the download goes on.
      const span = size - MARQUEE
      const tick = Math.floor(Date.now() / 125) % (2 * span)
      const at = tick <= span ? tick : 2 * span - tick
      bar = incomplete.slice(0, at) + complete.slice(0, MARQUEE) + incomplete.slice(0, size - at - MARQUEE)
    } else {
      const filled = Math.round(params.progress * size)
      bar = complete.slice(0, filled) + incomplete.slice(0, size - filled)
    }
    const bytes = payload.bytes !== '' ? `${payload.bytes}  ` : ''
    return `${payload.id.padEnd(width.id)} ${bar} ${payload.state.padEnd(10)} ${bytes}${payload.image}${payload.note !== '' ? `  ${payload.note}` : ''}`
  }
  const multi = new MultiBar({ ...BAR, clearOnComplete: false, stream, format })
  const bars = new Map<string, ReturnType<typeof multi.create>>()
  return {
    update: (rows) => {
      width.id = Math.max(width.id, ...rows.map((r) => r.id.length))
      for (const r of rows) {
        // A download with a known size fills by bytes; otherwise by stage (an unsized one draws the marquee).
        const stage = containerStage(r.state)
        const pull = r.pull
        const sized = pull !== undefined && pull.totalBytes > 0
        const total = sized ? pull.totalBytes : stage.of
        const value = sized ? Math.min(pull.doneBytes, total) : stage.at
        const payload = { id: r.id, state: r.state, image: r.image, note: r.note.slice(0, 60), bytes: pull === undefined ? '' : pullText(pull), unsized: pull !== undefined && !sized }
        let bar = bars.get(r.id)
        if (bar === undefined) {
          bar = multi.create(total, value, payload)
          bars.set(r.id, bar)
        }
        bar.setTotal(total)
        bar.update(value, payload)
      }
    },
    stop: (finalLine) => {
      multi.stop()
      if (finalLine !== undefined) stream.write(`${finalLine}\n`)
    }
  }
}
