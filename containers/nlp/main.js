// inframind/nlp:1 — one inference per run: the whole of stdin in, one JSON document out.
// Usage: main.js analyze | sentiment | entities | embed [dimension]
// Input: {"text": "..."} or plain UTF-8 text. Bad input: a message on stderr and exit code 2.
// Everything here is deterministic, so validators can re-execute a job and compare output hashes.
import winkNLP from 'wink-nlp'
import model from 'wink-eng-lite-web-model'

const EXIT_BAD_INPUT = 2
const DEFAULT_DIMENSION = 64
const MAX_DIMENSION = 4096
// wink's sentiment is in [-1, 1]; a small dead band keeps near-zero scores from flipping labels.
const NEUTRAL_BAND = 0.05
// Tokens that carry no meaning in a bag of words.
const SKIPPED_TOKEN_TYPES = new Set(['punctuation', 'tabCRLF'])

class BadInputError extends Error {}

const nlp = winkNLP(model)
const its = nlp.its

const tasks = {
  analyze: (doc) => ({ ...sentimentOf(doc), entities: entitiesOf(doc), tokens: doc.tokens().length() }),
  sentiment: (doc) => sentimentOf(doc),
  entities: (doc) => ({ entities: entitiesOf(doc) }),
  embed: (doc, args) => embed(doc, dimensionArg(args[0]))
}

function sentimentOf (doc) {
  // Rounded so the printed value does not depend on float formatting noise.
  const sentiment = Math.round(doc.out(its.sentiment) * 10000) / 10000
  const label = sentiment > NEUTRAL_BAND ? 'positive' : sentiment < -NEUTRAL_BAND ? 'negative' : 'neutral'
  return { sentiment, label }
}

function entitiesOf (doc) {
  return doc.entities().out(its.detail).map((e) => ({ value: e.value, type: e.type }))
}

/** Feature hashing (signed, Weinberger et al.) of wink's normalised tokens, L2-normalised. */
function embed (doc, dimension) {
  const vector = new Array(dimension).fill(0)
  const normals = doc.tokens().out(its.normal)
  const types = doc.tokens().out(its.type)
  for (let i = 0; i < normals.length; i++) {
    if (SKIPPED_TOKEN_TYPES.has(types[i])) continue
    const h = fnv1a(normals[i])
    // Low bits pick the slot, the top bit the sign: collisions then cancel out on average.
    vector[h % dimension] += (h & 0x80000000) !== 0 ? -1 : 1
  }
  const norm = Math.sqrt(vector.reduce((sum, v) => sum + v * v, 0))
  return norm === 0 ? vector : vector.map((v) => v / norm)
}

function fnv1a (text) {
  let h = 0x811c9dc5
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

function dimensionArg (arg) {
  if (arg === undefined) return DEFAULT_DIMENSION
  const n = Number(arg)
  if (!Number.isInteger(n) || n < 1 || n > MAX_DIMENSION) {
    throw new BadInputError(`embed dimension must be an integer in 1..${MAX_DIMENSION}, got ${JSON.stringify(arg)}`)
  }
  return n
}

function textOf (bytes) {
  let raw
  try {
    raw = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw new BadInputError('input is not valid UTF-8')
  }
  let text = raw
  // Only input that looks like a JSON object is read as JSON; anything else is the text itself.
  if (raw.trimStart().startsWith('{')) {
    let value
    try {
      value = JSON.parse(raw)
    } catch (err) {
      throw new BadInputError(`input looks like JSON but does not parse: ${err.message}`)
    }
    if (typeof value?.text !== 'string') throw new BadInputError('JSON input needs a string field "text"')
    text = value.text
  }
  if (text.trim() === '') throw new BadInputError('input text is empty')
  return text
}

async function readStdin () {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks)
}

async function main () {
  const [taskName = 'analyze', ...args] = process.argv.slice(2)
  const task = tasks[taskName]
  if (task === undefined) {
    throw new BadInputError(`unknown task ${JSON.stringify(taskName)}; use one of: ${Object.keys(tasks).join(', ')}`)
  }
  const doc = nlp.readDoc(textOf(await readStdin()))
  process.stdout.write(JSON.stringify(task(doc, args)) + '\n')
}

main().catch((err) => {
  const bad = err instanceof BadInputError
  process.stderr.write(`nlp: ${bad ? err.message : err.stack}\n`)
  process.exitCode = bad ? EXIT_BAD_INPUT : 1
})
