// The nlp analyses as a warm HTTP service (the node's service contract, docs/CONTAINERS.md):
//   GET  /health  200 once the model is loaded, 503 before
//   POST /        {"job_id", "input": "text" | {"text": "..."}, "origin"} -> 200 {"output": <analysis>}
//                 bad input -> 400 {"error": {"code": "BAD_INPUT", "message"}}
// Env: PORT (default 8080), TASK (analyze | sentiment | entities | embed; default analyze),
// DIMENSION (embed only; default 64).
import { BadInputError } from './errors.js'
import { HttpError, listen, readJson, sendError, sendJson } from './http.js'

export async function serve () {
  let model
  await listen(async (req, res) => {
    const path = req.url?.split('?')[0]
    if (req.method === 'GET' && path === '/health') {
      if (model === undefined) sendJson(res, 503, { status: 'loading' })
      else sendJson(res, 200, { status: 'ok', task: model.taskName })
      return
    }
    if (req.method !== 'POST' || path !== '/') {
      sendError(res, 404, 'NOT_FOUND', `no ${req.method} ${path}: use POST / or GET /health`)
      return
    }
    if (model === undefined) throw new HttpError(503, 'LOADING', 'the model is still loading')
    const body = await readJson(req)
    if (body === null || typeof body !== 'object' || !('input' in body)) {
      throw new HttpError(400, 'BAD_INPUT', 'request body needs an "input" field')
    }
    try {
      sendJson(res, 200, { output: model.run(body.input) })
    } catch (err) {
      if (err instanceof BadInputError) throw new HttpError(400, 'BAD_INPUT', err.message)
      throw err
    }
  })
  // The server answers (503) while the model loads, so the node can tell "warming up" from "dead".
  model = await loadModel()
}

async function loadModel () {
  const { analyse, dimensionArg, taskOf, textOfValue } = await import('./nlp.js')
  const taskName = process.env.TASK || 'analyze'
  const task = taskOf(taskName)
  // Checked once here so a bad DIMENSION stops the server at startup, not on every request.
  const args = taskName === 'embed' ? [String(dimensionArg(process.env.DIMENSION))] : []
  return { taskName, run: (input) => analyse(task, textOfValue(input), args) }
}
