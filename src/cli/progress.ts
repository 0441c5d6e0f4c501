/**
 * Progress for the waits of the CLI: a job's steps (`submit --wait`, `run`, `logs -f`) and containers
 * getting their images and starting (`containers --wait`). Bars (cli-progress) only on a TTY; to a
 * pipe or a log file, one plain line per change, so CI logs stay readable; nothing at all under
 * --json (the caller passes `quiet`). cli-progress is loaded only when a bar is drawn.
 */
import type { GenericFormatter } from 'cli-progress'
import { formatDuration, stateName } from './format.ts'

export interface JobProgress {
  /** A job event: its wire or plain state and the event's detail ("step 2/3: resize", "verifying: ..."). */
  update(state: string, detail: string): void
  stop(finalLine?: string): void
}

export interface ContainerRow { id: string, state: string, image: string, note: string }

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

/** One bar per container (image fetched, service started, healthy); plain lines off a TTY. */
export async function containerProgress (stream: NodeJS.WriteStream, opts: { quiet?: boolean } = {}): Promise<ContainerProgress> {
  if (opts.quiet === true) return { update: () => {}, stop: () => {} }
  if (stream.isTTY !== true) {
    const seen = new Map<string, string>()
    return {
      update: (rows) => {
        for (const r of rows) {
          const line = `${r.state}${r.note !== '' ? ` (${r.note})` : ''}`
          if (seen.get(r.id) !== line) { seen.set(r.id, line); stream.write(`container ${r.id}: ${line}\n`) }
        }
      },
      stop: (finalLine) => { if (finalLine !== undefined) stream.write(`${finalLine}\n`) }
    }
  }
  const { MultiBar } = await barsModule()
  const width = { id: 0 }
  const format: GenericFormatter = (options, params, payload: { id: string, state: string, image: string, note: string }) => {
    const size = options.barsize ?? 24
    const filled = Math.round(params.progress * size)
    const bar = (options.barCompleteString ?? '').slice(0, filled) + (options.barIncompleteString ?? '').slice(0, size - filled)
    return `${payload.id.padEnd(width.id)} ${bar} ${payload.state.padEnd(10)} ${payload.image}${payload.note !== '' ? `  ${payload.note}` : ''}`
  }
  const multi = new MultiBar({ ...BAR, clearOnComplete: false, stream, format })
  const bars = new Map<string, ReturnType<typeof multi.create>>()
  return {
    update: (rows) => {
      width.id = Math.max(width.id, ...rows.map((r) => r.id.length))
      for (const r of rows) {
        const stage = containerStage(r.state)
        const payload = { id: r.id, state: r.state, image: r.image, note: r.note.slice(0, 60) }
        let bar = bars.get(r.id)
        if (bar === undefined) {
          bar = multi.create(stage.of, stage.at, payload)
          bars.set(r.id, bar)
        }
        bar.setTotal(stage.of)
        bar.update(stage.at, payload)
      }
    },
    stop: (finalLine) => {
      multi.stop()
      if (finalLine !== undefined) stream.write(`${finalLine}\n`)
    }
  }
}
