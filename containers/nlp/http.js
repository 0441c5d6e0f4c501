// Small HTTP helpers shared by the warm server (serve.js) and the test server (testserver.js).
import { createServer } from 'node:http'

const DEFAULT_PORT = 8080
// Above the node's own idle keep-alive use, so the server is not the side that closes a connection
// the node is about to reuse (which would fail that request).
const KEEP_ALIVE_TIMEOUT_MS = 65_000
// Requests bigger than this are refused before they are buffered; the node's inputs are far smaller.
export const MAX_BODY_BYTES = 16 * 1024 * 1024

export function port () {
  const n = Number(process.env.PORT ?? DEFAULT_PORT)
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`PORT must be a TCP port, got ${JSON.stringify(process.env.PORT)}`)
  return n
}

export class HttpError extends Error {
  constructor (status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

/** The request body parsed as JSON, at most MAX_BODY_BYTES. */
export async function readJson (req) {
  const chunks = []
  let length = 0
  for await (const chunk of req) {
    length += chunk.length
    if (length > MAX_BODY_BYTES) throw new HttpError(413, 'TOO_LARGE', `request body above ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks, length).toString('utf8'))
  } catch (err) {
    throw new HttpError(400, 'BAD_INPUT', `request body is not JSON: ${err.message}`)
  }
}

export function sendJson (res, status, value) {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

export function sendError (res, status, code, message) {
  sendJson(res, status, { error: { code, message } })
}

/** Listens on PORT (all interfaces of the container: the node reaches it through a published port). */
export async function listen (handler) {
  const server = createServer((req, res) => {
    handler(req, res).catch((err) => {
      if (res.headersSent) {
        res.destroy()
      } else if (err instanceof HttpError) {
        sendError(res, err.status, err.code, err.message)
      } else {
        process.stderr.write(`server: ${err.stack}\n`)
        sendError(res, 500, 'INTERNAL', 'internal error; see the container log')
      }
    })
  })
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS
  server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1000
  // The engine stops a container with SIGTERM; a process with pid 1 ignores it unless it handles it.
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.once(signal, () => {
      server.close(() => { process.exit(0) })
      server.closeIdleConnections()
    })
  }
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port(), resolve)
  })
  return server
}
