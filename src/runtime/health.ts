/** One health check of a service container: GET <healthPath> on 127.0.0.1, 2xx = healthy. */
import { request } from 'node:http'
import type { Agent } from 'node:http'
import { SERVICE_HOST_IP } from './sandbox.ts'

export interface ProbeTarget {
  agent: Agent
  port: number
  path: string
}

/**
 * Resolves undefined when the service answered 2xx within `timeoutMs`, else the reason it is not
 * healthy (status or connection error). Never rejects; `signal` ends it early with 'aborted'.
 */
export async function probeHealth (target: ProbeTarget, timeoutMs: number, signal: AbortSignal): Promise<string | undefined> {
  if (signal.aborted) return 'aborted'
  return await new Promise((resolve) => {
    let settled = false
    const done = (reason: string | undefined): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      resolve(reason)
    }
    const req = request({ host: SERVICE_HOST_IP, port: target.port, path: target.path, method: 'GET', agent: target.agent }, (res) => {
      const status = res.statusCode ?? 0
      // The body is not needed, but it must be read for the connection to be reused.
      res.resume()
      res.once('end', () => { done(status >= 200 && status < 300 ? undefined : `GET ${target.path} answered HTTP ${status}`) })
      res.once('error', (err) => { done(`GET ${target.path}: ${err.message}`) })
    })
    const timer = setTimeout(() => {
      done(`GET ${target.path} did not answer within ${timeoutMs} ms`)
      req.destroy()
    }, timeoutMs)
    const onAbort = (): void => {
      done('aborted')
      req.destroy()
    }
    signal.addEventListener('abort', onAbort, { once: true })
    req.once('error', (err: NodeJS.ErrnoException) => { done(`GET ${target.path}: ${err.code ?? err.message}`) })
    req.end()
  })
}
