/**
 * Stop requests to the long-running commands (`infra start`, `infra devnet`). They come as SIGINT or
 * SIGTERM sent to this process, and, when bin/infra.js launched it, as messages from the launcher
 * over IPC: the launcher forwards the signals sent to the pid the user started.
 *
 * One user action can arrive twice (Ctrl-C reaches the launcher and this process; a service manager
 * signals every process of the unit; devnet SIGTERMs nodes that already had the terminal's SIGINT),
 * so a stop turns into a forced stop only when one source repeats itself: the same signal again, or
 * the launcher saying its own user sent a second signal.
 */
import { constants } from 'node:os'

export type StopKind = 'stop' | 'force'

/** What the launcher sends its child (bin/infra.js writes the same shape). */
interface LauncherMessage { infra: StopKind, signal: string }

/** Exit code of a forced stop: as a shell reports a process killed by that signal (130 SIGINT, 143 SIGTERM). */
export function forcedExitCode (signal: string): number {
  return 128 + ((constants.signals as Record<string, number>)[signal] ?? constants.signals.SIGTERM)
}

/**
 * Calls `handler('stop', signal)` on the first request and `handler('force', signal)` once on a
 * repeated one. The launcher going away (it was killed) is a stop request too, so no node outlives
 * it. Returns a function that removes every listener (an IPC listener keeps the process alive).
 */
export function onStopRequests (handler: (kind: StopKind, signal: string) => void): () => void {
  let state: 'running' | StopKind = 'running'
  const seen = new Set<string>()
  const request = (kind: StopKind, signal: string): void => {
    if (state === 'force' || (state === 'stop' && kind === 'stop')) return
    state = state === 'running' ? 'stop' : 'force'
    handler(state, signal)
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    request(seen.has(signal) ? 'force' : 'stop', signal)
    seen.add(signal)
  }
  const onMessage = (message: unknown): void => {
    const m = message as Partial<LauncherMessage> | null
    if ((m?.infra === 'stop' || m?.infra === 'force') && typeof m.signal === 'string') request(m.infra, m.signal)
  }
  const onDisconnect = (): void => { request('stop', 'SIGHUP') }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const launched = typeof process.send === 'function'
  if (launched) {
    process.on('message', onMessage)
    process.on('disconnect', onDisconnect)
  }
  return () => {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    if (launched) {
      process.off('message', onMessage)
      process.off('disconnect', onDisconnect)
    }
  }
}
