/** Terminal formatting for the CLI's human output. */

export function formatDuration (ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  const s = Math.floor(ms / 1000)
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  const parts = [d > 0 ? `${d}d` : '', h > 0 ? `${h}h` : '', m > 0 ? `${m}m` : '', `${s % 60}s`]
  return parts.filter((p) => p !== '').join(' ')
}

export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`
}

/** Left-aligned columns sized to their widest cell. */
export function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n') + '\n'
}

export function shortDigest (digest: string): string {
  return digest.startsWith('sha256:') ? digest.slice(0, 19) : digest
}

export function stateName (wire: string): string {
  return wire.replace(/^JOB_STATE_/, '').toLowerCase()
}

/** Output bytes as text when they are valid UTF-8, else a note (use --json or --output-file for bytes). */
export function printable (bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return undefined
  }
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']

export interface Spinner {
  update(text: string): void
  stop(finalLine?: string): void
}

/** A spinner on a TTY; plain progress lines otherwise (logs and CI stay readable). */
export function spinner (stream: NodeJS.WriteStream, text: string): Spinner {
  if (stream.isTTY !== true) {
    stream.write(`${text}\n`)
    return {
      update: (t) => { if (t !== text) { text = t; stream.write(`${t}\n`) } },
      stop: (finalLine) => { if (finalLine !== undefined) stream.write(`${finalLine}\n`) }
    }
  }
  let frame = 0
  const started = Date.now()
  const draw = (): void => {
    stream.write(`\r\x1b[2K${FRAMES[frame++ % FRAMES.length]} ${text} (${((Date.now() - started) / 1000).toFixed(1)}s)`)
  }
  const timer = setInterval(draw, 80)
  draw()
  return {
    update: (t) => { text = t; draw() },
    stop: (finalLine) => {
      clearInterval(timer)
      stream.write('\r\x1b[2K')
      if (finalLine !== undefined) stream.write(`${finalLine}\n`)
    }
  }
}
