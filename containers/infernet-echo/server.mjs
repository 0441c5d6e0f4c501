// inframind/infernet-echo:1 — a container that follows Ritual Infernet's container contract, so any
// Infernet node (and an inframind node with `protocol: infernet`) can run it. Plain Node, no packages.
//
//   GET  /                 200 {"message": ...}        (Infernet images answer their index here)
//   GET  /health           200 {"status": "healthy"}
//   POST /service_output   {"source", "destination", "data", "requires_proof"}
//                          -> 200 {"output": <data with every string in capitals>, "received": <the request body>}
//                          a body that is not such a request -> 400 {"code", "name", "description"}
//
// JobLocation: 0 onchain, 1 offchain, 2 stream (source is 0 or 1). Offchain data is any JSON value,
// onchain data a hex string; both are echoed the same way.
//
// For the node's own tests, data {"echo_test": "<behaviour>"} misbehaves on purpose:
//   "status:<code>"  answer <code> with an error body in the werkzeug shape Ritual's services use
//   "html:<code>"    answer <code> with an HTML error page (what Flask sends by default)
//   "garbage"        answer 200 with a body that is not JSON
//   "sleep:<ms>"     answer normally after <ms> milliseconds
// Env: PORT (default 3000, the port every Infernet container listens on).
import { createServer } from 'node:http'

const PORT = Number(process.env.PORT ?? 3000)
const MAX_BODY_BYTES = 16 * 1024 * 1024
// Longer than any client's idle keep-alive, so this side never closes a connection about to be reused.
const KEEP_ALIVE_TIMEOUT_MS = 65_000
const LOCATIONS = new Set([0, 1, 2])
const REASONS = { 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 413: 'Request Entity Too Large', 500: 'Internal Server Error' }

class HttpError extends Error {
  constructor (status, description) {
    super(description)
    this.status = status
  }
}

function send (res, status, value) {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function sendError (res, status, description) {
  send(res, status, { code: String(status), name: REASONS[status] ?? 'Error', description })
}

async function readJson (req) {
  const chunks = []
  let length = 0
  for await (const chunk of req) {
    length += chunk.length
    if (length > MAX_BODY_BYTES) throw new HttpError(413, `request body above ${MAX_BODY_BYTES} bytes`)
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks, length).toString('utf8'))
  } catch (err) {
    throw new HttpError(400, `request body is not JSON: ${err.message}`)
  }
}

/** The checks an Infernet container's input model makes: known locations, data present, a boolean proof flag. */
function validate (body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'expected an object {source, destination, data, requires_proof}')
  if (body.source !== 0 && body.source !== 1) throw new HttpError(400, `source must be 0 (onchain) or 1 (offchain), got ${JSON.stringify(body.source)}`)
  if (!LOCATIONS.has(body.destination)) throw new HttpError(400, `destination must be 0, 1 or 2, got ${JSON.stringify(body.destination)}`)
  if (!('data' in body)) throw new HttpError(400, 'data is missing')
  if (body.requires_proof !== undefined && typeof body.requires_proof !== 'boolean') throw new HttpError(400, 'requires_proof must be a boolean')
}

/** The echo's transformation: every string value in capitals, keys and other values as they are. */
function shout (value) {
  if (typeof value === 'string') return value.toUpperCase()
  if (Array.isArray(value)) return value.map(shout)
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shout(v)]))
  return value
}

/** A test behaviour asked for in data.echo_test; true when the answer has been sent. */
async function misbehave (res, data) {
  const command = data !== null && typeof data === 'object' && typeof data.echo_test === 'string' ? data.echo_test : ''
  const [verb, arg] = command.split(':')
  if (verb === 'status') {
    sendError(res, Number(arg), `asked for HTTP ${arg}`)
    return true
  }
  if (verb === 'html') {
    res.writeHead(Number(arg), { 'content-type': 'text/html' })
    res.end(`<!doctype html>\n<html lang=en>\n<title>${arg} Error</title>\n<h1>Internal Server Error</h1>\n<p>asked for an HTML error page</p>\n`)
    return true
  }
  if (verb === 'garbage') {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('this is not json {')
    return true
  }
  if (verb === 'sleep') await new Promise((resolve) => setTimeout(resolve, Number(arg)))
  return false
}

async function handle (req, res) {
  const path = req.url?.split('?')[0]
  if (req.method === 'GET' && path === '/') return send(res, 200, { message: 'inframind infernet-echo: POST /service_output' })
  if (req.method === 'GET' && path === '/health') return send(res, 200, { status: 'healthy' })
  if (path !== '/service_output') throw new HttpError(404, `no ${path}: use POST /service_output`)
  if (req.method !== 'POST') throw new HttpError(405, 'only POST /service_output')
  const body = await readJson(req)
  validate(body)
  if (await misbehave(res, body.data)) return
  send(res, 200, { output: shout(body.data), received: body })
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    if (res.headersSent) return res.destroy()
    if (err instanceof HttpError) return sendError(res, err.status, err.message)
    process.stderr.write(`infernet-echo: ${err.stack}\n`)
    sendError(res, 500, 'internal error; see the container log')
  })
})
server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS
server.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1000
// As pid 1 the process ignores SIGTERM unless it handles it, and the engine would have to kill it.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    server.close(() => process.exit(0))
    server.closeIdleConnections()
  })
}
server.listen(PORT, '0.0.0.0', () => { process.stderr.write(`infernet-echo: listening on 0.0.0.0:${PORT}\n`) })
