/** One job container from create to removal: attach, start, feed stdin, stream output, judge the exit. */
import type { Duplex } from 'node:stream'
import type Dockerode from 'dockerode'
import type { Logger } from '../telemetry/logger.ts'
import { schemaViolation } from './schema.ts'
import type { RunRequest, RunResult } from './types.ts'
import { EXIT_SIGKILL, STDERR_TAIL_BYTES } from './constants.ts'
import {
  ContainerExitError, ContainerOomError, ContainerStartError, ContainerTimeoutError, EngineRequestError,
  OutputSchemaError, OutputTooLargeError, RunAbortedError
} from './errors.ts'
import type { RuntimeError, RuntimeErrorDetails } from './errors.ts'
import { buildCreateSpec } from './sandbox.ts'
import { CappedBuffer, STREAM_STDERR, STREAM_STDOUT, StreamDemuxer, TailBuffer } from './streams.ts'

export interface ExecuteContext {
  docker: Dockerode
  engineTimeoutMs: number
  runtimeId: string
  logger: Logger
  /** Ids of containers that exist right now; stop() and activeContainers() read it. */
  active: Set<string>
  /** Removals still in flight; settled() and stop() wait for them. */
  removals: Set<Promise<void>>
}

type Failure = (details: RuntimeErrorDetails) => RuntimeError

/**
 * Runs `req` in a fresh container of the verified `imageId` and removes the container whatever happens.
 * `signal` aborts the run (caller abort or runtime stop); its reason is the text of the RunAbortedError.
 * `startedAtMs` is when the run began (before the image check), so receipts time the whole run.
 */
export async function executeContainer (ctx: ExecuteContext, req: RunRequest, imageId: string, signal: AbortSignal, startedAtMs: number): Promise<RunResult> {
  const { docker, engineTimeoutMs } = ctx
  const spec = buildCreateSpec({ jobId: req.jobId, container: req.container, imageId, runtimeId: ctx.runtimeId })
  if (signal.aborted) throw new RunAbortedError(String(signal.reason), { imageDigest: imageId })

  let handle: Dockerode.Container
  try {
    const { name, ...body } = spec
    // _query/_body: otherwise dockerode also serialises the whole body into the URL.
    handle = await docker.createContainer({ _query: { name }, _body: body, abortSignal: AbortSignal.timeout(engineTimeoutMs) } as unknown as Dockerode.ContainerCreateOptions)
  } catch (err) {
    // A create that timed out on our side may still have happened on the engine's.
    await removeContainer(ctx, docker.getContainer(spec.name), true)
    throw new EngineRequestError(`create container ${req.container.id}`, { imageDigest: imageId, cause: err })
  }

  ctx.active.add(handle.id)
  try {
    return await runCreated(ctx, req, handle, imageId, signal, startedAtMs)
  } finally {
    // The result does not wait for the removal (~30 ms of engine work): the removal is tracked,
    // and settled()/stop() wait for it, so nothing leaks while the caller gets its answer sooner.
    const removal: Promise<void> = removeContainer(ctx, handle, false).finally(() => {
      ctx.active.delete(handle.id)
      ctx.removals.delete(removal)
    })
    ctx.removals.add(removal)
  }
}

async function runCreated (ctx: ExecuteContext, req: RunRequest, handle: Dockerode.Container, imageId: string, signal: AbortSignal, startedAtMs: number): Promise<RunResult> {
  const { container } = req
  const { engineTimeoutMs } = ctx
  const stdout = new CappedBuffer(container.maxOutputBytes)
  const stderr = new TailBuffer(STDERR_TAIL_BYTES)
  const details = (exitCode?: number): RuntimeErrorDetails =>
    exitCode === undefined ? { imageDigest: imageId, stderrTail: stderr.text() } : { imageDigest: imageId, stderrTail: stderr.text(), exitCode }

  const state: { failure: Failure | undefined, started: boolean } = { failure: undefined, started: false }
  // A function, not a read of state.failure: callbacks set it, which TS's narrowing cannot see.
  const failed = (): Failure | undefined => state.failure
  const kill = (): void => {
    // 409 (not running) and 404 (gone) are fine: the point is only that it stops.
    handle.kill({ abortSignal: AbortSignal.timeout(engineTimeoutMs) }).catch(() => {})
  }
  const fail = (f: Failure): void => {
    if (state.failure !== undefined) return
    state.failure = f
    if (state.started) kill()
  }

  // Long-lived requests (attach, wait) get no engine timeout; the run's own deadline bounds them.
  const longLived = new AbortController()
  const attachTimer = setTimeout(() => longLived.abort(), engineTimeoutMs)
  let stream: Duplex
  try {
    stream = await handle.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true, abortSignal: longLived.signal }) as unknown as Duplex
  } catch (err) {
    throw new EngineRequestError(`attach to container ${container.id}`, { imageDigest: imageId, cause: err })
  } finally {
    clearTimeout(attachTimer)
  }
  // Registered before start so an exit right after start is never missed.
  const exited = handle.wait({ condition: 'next-exit', abortSignal: longLived.signal }) as Promise<{ StatusCode: number }>
  exited.catch(() => {})

  let streamError: Error | undefined
  const demux = new StreamDemuxer((kind, payload) => {
    if (kind === STREAM_STDOUT) {
      if (!stdout.add(payload)) {
        fail((d) => new OutputTooLargeError(container.id, container.maxOutputBytes, d))
        // Stop reading at once: nothing past the cap is buffered.
        stream.destroy()
      }
    } else if (kind === STREAM_STDERR) {
      stderr.add(payload)
    }
  })
  // 'end' (the engine finished sending output), not 'close': a container that exits without reading
  // all of its stdin leaves our write side stuck, so the socket would never fully close.
  const closed = new Promise<void>((resolve) => {
    stream.once('end', () => { resolve() })
    stream.once('close', () => { resolve() })
  })
  stream.on('data', (chunk: Buffer) => { demux.push(chunk) })
  stream.on('error', (err: Error) => { streamError ??= err })

  const onAbort = (): void => { fail((d) => new RunAbortedError(String(signal.reason), d)) }
  signal.addEventListener('abort', onAbort, { once: true })
  if (signal.aborted) onAbort()
  const timer = setTimeout(() => { fail((d) => new ContainerTimeoutError(container.id, container.timeoutMs, d)) }, container.timeoutMs)
  let deadline: NodeJS.Timeout | undefined

  try {
    const early = failed()
    if (early !== undefined) throw early(details())
    try {
      await handle.start({ abortSignal: AbortSignal.timeout(engineTimeoutMs) })
    } catch (err) {
      throw startError(container.id, imageId, err)
    }
    state.started = true
    // A failure that fired while start was in flight could not kill a container that was not running yet.
    if (failed() !== undefined) kill()
    stream.end(Buffer.from(req.input.buffer, req.input.byteOffset, req.input.byteLength))

    // Backstop if the engine never reports the exit: the run's own timeout plus margin for the kill.
    const backstop = new Promise<'deadline'>((resolve) => {
      deadline = setTimeout(() => { resolve('deadline') }, container.timeoutMs + 2 * engineTimeoutMs)
    })
    const outcome = await Promise.race([Promise.all([exited, closed]), backstop]).catch((err: unknown) => err)
    if (outcome === 'deadline') {
      throw new EngineRequestError(`the engine did not report container ${container.id} exiting`, details())
    }
    if (!Array.isArray(outcome)) {
      throw new EngineRequestError(`wait for container ${container.id}`, { ...details(), cause: outcome })
    }
    const exitCode = outcome[0].StatusCode
    const finishedAtMs = Date.now()
    const failure = failed()
    if (failure !== undefined) throw failure(details(exitCode))
    if (streamError !== undefined && !demux.idle) {
      throw new EngineRequestError(`read output of container ${container.id}`, { ...details(exitCode), cause: streamError })
    }
    if (exitCode !== 0) {
      // 137 (SIGKILL) when we did not kill the job is the OOM killer in practice (a job could SIGKILL
      // itself, but gains nothing by it); trusting it also covers engines whose OOMKilled flag misses
      // OOM kills of child processes (Docker 20.10 on cgroup v2). Other codes ask the engine.
      if (exitCode === EXIT_SIGKILL || await oomKilled(ctx, handle)) {
        throw new ContainerOomError(container.id, container.resources.memoryBytes, details(exitCode))
      }
      throw new ContainerExitError(container.id, exitCode, details())
    }
    const output = stdout.bytes()
    const violation = schemaViolation(container.outputSchema, output)
    if (violation !== undefined) throw new OutputSchemaError(container.id, violation, details(exitCode))
    return { output, exitCode, imageDigest: imageId, stderrTail: stderr.text(), startedAtMs, finishedAtMs }
  } finally {
    clearTimeout(timer)
    clearTimeout(deadline)
    signal.removeEventListener('abort', onAbort)
    stream.destroy()
    longLived.abort()
  }
}

function startError (containerId: string, imageId: string, err: unknown): RuntimeError {
  const status = (err as { statusCode?: number }).statusCode
  // 400/500 from start are the OCI runtime refusing the container (bad command, bad user): a job failure.
  if (status === 400 || status === 500) return new ContainerStartError(containerId, { imageDigest: imageId, cause: err })
  return new EngineRequestError(`start container ${containerId}`, { imageDigest: imageId, cause: err })
}

async function oomKilled (ctx: ExecuteContext, handle: Dockerode.Container): Promise<boolean> {
  try {
    const info = await handle.inspect({ abortSignal: AbortSignal.timeout(ctx.engineTimeoutMs) })
    return info.State.OOMKilled
  } catch {
    return false
  }
}

/** Force-removes (kills if running); tolerates "already gone". `quiet`: it may never have existed. */
async function removeContainer (ctx: ExecuteContext, handle: Dockerode.Container, quiet: boolean): Promise<void> {
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      await handle.remove({ force: true, v: true, abortSignal: AbortSignal.timeout(ctx.engineTimeoutMs) })
      return
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode
      if (status === 404) return
      // 409: removal already in progress (e.g. stop() raced the run's own cleanup).
      if (status === 409) return
      if (attempt === 2 && !quiet) {
        ctx.logger.warn({ container: handle.id, err }, 'could not remove job container; it carries the inframind.job label for cleanup')
      }
    }
  }
}
