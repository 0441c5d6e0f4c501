import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino'

export type { Logger }

/** The node's one structured logger; components take `logger.child({ component })`. */
export function createLogger (opts: { level?: LevelWithSilent, nodeId?: string, destination?: NodeJS.WritableStream } = {}): Logger {
  return pino({
    level: opts.level ?? 'info',
    base: opts.nodeId !== undefined ? { node: opts.nodeId } : {},
    // Private keys are never logged; redact anything that looks like one if it slips into a log object.
    redact: { paths: ['*.privateKey', '*.seed', 'privateKey', 'seed'], censor: '[redacted]' }
  }, opts.destination as DestinationStream | undefined)
}

/** A logger that writes nothing, for tests and the CLI's client commands. */
export function silentLogger (): Logger {
  return pino({ level: 'silent' })
}
