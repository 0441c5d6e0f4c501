/** One job container from create to removal: attach, start, feed stdin, stream output, judge the exit. */
import type { Duplex, Readable } from 'node:stream'
import type Dockerode from 'dockerode'
import type { Logger } from '../telemetry/logger.ts'
import { schemaViolation } from './schema.ts'
import type { RunRequest, RunResult } from './types.ts'
import { EXIT_SIGKILL, MAX_STDERR_BYTES, STDERR_TAIL_BYTES } from './constants.ts'
import {
  ContainerExitError, ContainerOomError, ContainerStartError, ContainerTimeoutError, EngineRequestError,
  OutputSchemaError, OutputTooLargeError, RunAbortedError, StderrTooLargeError
} from './errors.ts'
import type { RuntimeError, RuntimeErrorDetails } from './errors.ts'
import { buildCreateSpec } from './sandbox.ts'
import type { Engine } from './sandbox.ts'
import { JobOutput } from './streams.ts'

export interface ExecuteContext {
  docker: Dockerode
  engineTimeoutMs: number
  runtimeId: string
  /** Labels the container as this node's, so a later start can remove it if this process dies. */
  nodeId: string | undefined
  logger: Logger
  /** Ids of containers that exist right now; stop() and activeContainers() read it. */
  active: Set<string>
  /** Removals still in flight; settled() and stop() wait for them. */
  removals: Set<Promise<void>>
  /**
   * docker: the output is the attach stream's. podman: the attach stream carries stdin and the live
   * output cap, and the output is read from the container's log once it has exited (docs/PODMAN.md).
   */
  engine: Engine
}

type Failure = (details: RuntimeErrorDetails) => RuntimeError

/**
 * Runs `req` in a fresh container of the verified `imageId` and removes the container whatever happens.
 * `signal` aborts the run (caller abort or runtime stop); its reason is the text of the RunAbortedError.
 * `startedAtMs` is when the run began (before the image check), so receipts time the whole run.
 */
export async function executeContainer (ctx: ExecuteContext, req: RunRequest, imageId: string, signal: AbortSignal, startedAtMs: number): Promise<RunResult> {
  const { docker, engineTimeoutMs } = ctx
  const spec = buildCreateSpec({ jobId: req.jobId, container: req.container, imageId, runtimeId: ctx.runtimeId, engine: ctx.engine, nodeId: ctx.nodeId })
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
  const state: { failure: Failure | undefined, started: boolean } = { failure: undefined, started: false }
  // A function, not a read of state.failure: callbacks set it, which TS's narrowing cannot see.
  const failed = (): Failure | undefined => state.failure
  // Aborted by the first failure, so a read of the log (Podman) ends with the run's timeout or abort.
  const anyFailure = new AbortController()
  const kill = (): void => {
    // 409 (not running) and 404 (gone) are fine: the point is only that it stops.
    handle.kill({ abortSignal: AbortSignal.timeout(engineTimeoutMs) }).catch(() => {})
  }
  const fail = (f: Failure): void => {
    if (state.failure !== undefined) return
    state.failure = f
    anyFailure.abort()
    if (state.started) kill()
  }
  const tooLarge: Failure = (d) => new OutputTooLargeError(container.id, container.maxOutputBytes, d)

  // Long-lived requests (attach, wait) get no engine timeout; the run's own deadline bounds them.
  const longLived = new AbortController()
  const attachTimer = setTimeout(() => longLived.abort(), engineTimeoutMs)
  let stream: Duplex
  try {
    stream = await attach(ctx, handle, longLived.signal)
  } catch (err) {
    // docker-modem never ends a hijacked request whose stdin is open: without this its socket stays.
    longLived.abort()
    // Podman prepares the OCI container at attach, so a command missing from the image fails here (409).
    if ((err as { statusCode?: number }).statusCode === 409) throw new ContainerStartError(container.id, { imageDigest: imageId, cause: err })
    throw new EngineRequestError(`attach to container ${container.id}`, { imageDigest: imageId, cause: err })
  } finally {
    clearTimeout(attachTimer)
  }
  // Registered before start so an exit right after start is never missed.
  const exited = handle.wait({ condition: 'next-exit', abortSignal: longLived.signal }) as Promise<{ StatusCode: number }>
  exited.catch(() => {})

  // On Podman the attach stream only enforces the cap live; the bytes kept are the log's (below).
  const live = new JobOutput({
    maxStdout: container.maxOutputBytes,
    stderrTail: STDERR_TAIL_BYTES,
    keepStdout: ctx.engine === 'docker',
    onOverflow: () => {
      fail(tooLarge)
      // Stop reading at once: nothing past the cap is buffered.
      stream.destroy()
    },
    maxStderr: MAX_STDERR_BYTES,
    // Live on both engines: on Podman the kept output is the log's, but the attach stream carries the same bytes first.
    onStdout: outputListener(req, ctx.logger),
    onStderrFlood: () => {
      fail((d) => new StderrTooLargeError(container.id, MAX_STDERR_BYTES, d))
      stream.destroy()
    }
  })
  let output = live
  const details = (exitCode?: number): RuntimeErrorDetails =>
    exitCode === undefined ? { imageDigest: imageId, stderrTail: output.stderr.text() } : { imageDigest: imageId, stderrTail: output.stderr.text(), exitCode }

  let streamError: Error | undefined
  // 'end' (the engine finished sending output), not 'close': a container that exits without reading
  // all of its stdin leaves our write side stuck, so the socket would never fully close.
  const closed = new Promise<void>((resolve) => {
    stream.once('end', () => { resolve() })
    stream.once('close', () => { resolve() })
  })
  stream.on('data', (chunk: Buffer) => { live.push(chunk) })
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
    let logError: Error | undefined
    const fromLog = ctx.engine === 'podman' && failed() === undefined
    if (fromLog) {
      // The container ended on its own, so the log holds all of its output. A failure we caused
      // (timeout, abort, cap) keeps the attach stream's stderr tail, which is what it has to say.
      output = new JobOutput({ maxStdout: container.maxOutputBytes, stderrTail: STDERR_TAIL_BYTES, onOverflow: () => { fail(tooLarge) } })
      logError = await readLog(ctx, handle, output, anyFailure.signal)
      if (logError === undefined && !output.idle) logError = new Error('the log ended inside a frame')
    }
    const finishedAtMs = Date.now()
    const failure = failed()
    if (failure !== undefined) throw failure(details(exitCode))
    // Without the log there is no output at all, so any error reading it fails the run.
    if (logError !== undefined) {
      throw new EngineRequestError(`read the log of container ${container.id}`, { ...details(exitCode), cause: logError })
    }
    // An attach stream that broke between frames lost nothing: the engine had sent all the output.
    if (!fromLog && streamError !== undefined && !output.idle) {
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
    const bytes = output.stdout.bytes()
    const violation = schemaViolation(container.outputSchema, bytes)
    if (violation !== undefined) throw new OutputSchemaError(container.id, violation, details(exitCode))
    return { output: bytes, exitCode, imageDigest: imageId, stderrTail: output.stderr.text(), startedAtMs, finishedAtMs }
  } finally {
    clearTimeout(timer)
    clearTimeout(deadline)
    signal.removeEventListener('abort', onAbort)
    stream.destroy()
    longLived.abort()
  }
}

/** The caller's output listener, shielded: a listener that throws must not break the run. */
export function outputListener (req: RunRequest, logger: Logger): ((bytes: Uint8Array) => void) | undefined {
  const listener = req.onOutput
  if (listener === undefined) return undefined
  return (bytes) => {
    try {
      listener(bytes)
    } catch (err) {
      logger.warn({ err, job: req.jobId }, 'output listener threw; the run carries on')
    }
  }
}

/** docker-modem's request options. */
type DialOptions = Parameters<Dockerode['modem']['dial']>[0]

/**
 * Attaches stdin, stdout and stderr before start. Dialled by hand because dockerode's attach() also
 * sends its options as a JSON body, which Podman feeds into the container's stdin (Docker ignores
 * it). An empty body, not none: Node sends the request headers only with the first write.
 */
async function attach (ctx: ExecuteContext, handle: Dockerode.Container, signal: AbortSignal): Promise<Duplex> {
  return await new Promise<Duplex>((resolve, reject) => {
    const opts: DialOptions = {
      path: `/containers/${handle.id}/attach?`,
      method: 'POST',
      options: { stream: 'true', stdin: 'true', stdout: 'true', stderr: 'true' },
      file: Buffer.alloc(0),
      isStream: true,
      hijack: true,
      openStdin: true,
      abortSignal: signal,
      statusCodes: { 101: true, 200: true, 400: 'bad parameter', 404: 'no such container', 409: 'conflict', 500: 'server error' }
    }
    ctx.docker.modem.dial(opts, (err, data) => {
      if (err !== null && err !== undefined) reject(err)
      else resolve(data as Duplex)
    })
  })
}

/**
 * Reads an exited container's stdout and stderr from its log (`GET /containers/{id}/logs`, the same
 * multiplexed format as attach) into `output`, and stops at the cap: `output` calls its overflow
 * handler and nothing more is read. Resolves with the read's error, if any; `signal` ends it early.
 */
async function readLog (ctx: ExecuteContext, handle: Dockerode.Container, output: JobOutput, signal: AbortSignal): Promise<Error | undefined> {
  let log: Readable | undefined
  // The engine timeout bounds the wait for the answer; the body, bounded by the cap on stdout but
  // not on stderr, has the run's own timeout (through `signal`).
  const answer = new AbortController()
  const answerTimer = setTimeout(() => { answer.abort() }, ctx.engineTimeoutMs)
  try {
    log = await new Promise<Readable>((resolve, reject) => {
      const opts: DialOptions = {
        path: `/containers/${handle.id}/logs?`,
        method: 'GET',
        options: { stdout: 'true', stderr: 'true', follow: 'false' },
        isStream: true,
        abortSignal: AbortSignal.any([signal, answer.signal]),
        statusCodes: { 200: true, 404: 'no such container', 500: 'server error' }
      }
      ctx.docker.modem.dial(opts, (err, data) => {
        if (err !== null && err !== undefined) reject(err)
        else resolve(data as Readable)
      })
    })
    clearTimeout(answerTimer)
    for await (const chunk of log) {
      output.push(chunk as Buffer)
      // Past the cap nothing more is read; the run has failed (OUTPUT_TOO_LARGE).
      if (signal.aborted || output.stdout.overflowed) break
    }
    return undefined
  } catch (err) {
    return err as Error
  } finally {
    clearTimeout(answerTimer)
    log?.destroy()
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
        ctx.logger.warn({ container: handle.id, err }, 'could not remove job container; the node removes it at its next start (inframind.node label)')
      }
    }
  }
}
