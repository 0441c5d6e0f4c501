// Misbehaving services for the node's runtime tests; never used for real jobs.
// Env: PORT (default 8080); READY_AFTER_MS (health answers 503 until then; "never" = never ready);
// CRASH_AFTER (exit with code 3 right after answering that many jobs; 0 = never).
// POST / answers {"output": <input>} (an echo) unless the input is one of these strings:
//   "crash"          exit with code 3 at once, without answering
//   "status:<code>"  answer <code> with {"error": {"code": "TEST_ERROR", "message"}}
//   "raw:<code>:<n>" answer <code> with n bytes of plain text
//   "sleep:<ms>"     answer "slept" after ms
//   "big:<n>"        answer a string of n "x"
//   "unhealthy"      answer "ok", then fail every health check from now on
//   "badjson"        answer 200 with a body that is not JSON
//   "nooutput"       answer 200 {} (no output field)
//   "whoami"         answer {"job_id", "origin"} as received
import { listen, readJson, sendError, sendJson } from './http.js'

const EXIT_CRASH = 3

export async function serve () {
  const startedAt = Date.now()
  const readyAfter = process.env.READY_AFTER_MS === 'never' ? Infinity : Number(process.env.READY_AFTER_MS ?? 0)
  const crashAfter = Number(process.env.CRASH_AFTER ?? 0)
  let answered = 0
  let healthy = true

  const crash = (why) => {
    process.stderr.write(`testserver: crashing: ${why}\n`)
    process.exit(EXIT_CRASH)
  }

  await listen(async (req, res) => {
    const path = req.url?.split('?')[0]
    if (req.method === 'GET' && path === '/health') {
      const ok = healthy && Date.now() - startedAt >= readyAfter
      sendJson(res, ok ? 200 : 503, { status: ok ? 'ok' : healthy ? 'warming up' : 'broken' })
      return
    }
    if (req.method !== 'POST') {
      sendError(res, 404, 'NOT_FOUND', `no ${req.method} ${path}`)
      return
    }
    const body = await readJson(req)
    const input = body.input
    const command = typeof input === 'string' ? input : ''
    const [verb, arg, extra] = command.split(':')
    if (command === 'crash') crash('asked to by a job')
    let output = input
    if (verb === 'status') {
      sendError(res, Number(arg), 'TEST_ERROR', `asked for HTTP ${arg}`)
      return
    } else if (verb === 'raw') {
      res.writeHead(Number(arg), { 'content-type': 'text/plain' })
      res.end('E'.repeat(Number(extra ?? 10)))
      return
    } else if (verb === 'sleep') {
      await new Promise((resolve) => setTimeout(resolve, Number(arg)))
      output = 'slept'
    } else if (verb === 'big') {
      output = 'x'.repeat(Number(arg))
    } else if (command === 'unhealthy') {
      healthy = false
      output = 'ok'
    } else if (command === 'badjson') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('this is not json')
      return
    } else if (command === 'nooutput') {
      sendJson(res, 200, {})
      return
    } else if (command === 'whoami') {
      output = { job_id: body.job_id, origin: body.origin }
    }
    answered++
    const last = crashAfter > 0 && answered >= crashAfter
    if (last) res.once('finish', () => { crash(`answered ${answered} jobs`) })
    sendJson(res, 200, { output })
  })
}
