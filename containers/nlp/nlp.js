// The analyses of the nlp image, shared by the one-shot tasks (main.js) and the warm server (serve.js).
// Everything here is deterministic, so validators can re-execute a job and compare output hashes.
import winkNLP from 'wink-nlp'
import model from 'wink-eng-lite-web-model'
import { BadInputError } from './errors.js'

const DEFAULT_DIMENSION = 64
const MAX_DIMENSION = 4096
// wink's sentiment is in [-1, 1]; a small dead band keeps near-zero scores from flipping labels.
const NEUTRAL_BAND = 0.05
// Tokens that carry no meaning in a bag of words.
const SKIPPED_TOKEN_TYPES = new Set(['punctuation', 'tabCRLF'])

const nlp = winkNLP(model)
const its = nlp.its

export const TASKS = {
  analyze: (doc) => ({ ...sentimentOf(doc), entities: entitiesOf(doc), tokens: doc.tokens().length() }),
  sentiment: (doc) => sentimentOf(doc),
  entities: (doc) => ({ entities: entitiesOf(doc) }),
  embed: (doc, args) => embed(doc, dimensionArg(args[0]))
}

/** The task function for `name`, checked once at startup rather than per request. */
export function taskOf (name) {
  const task = TASKS[name]
  if (task === undefined) {
    throw new BadInputError(`unknown task ${JSON.stringify(name)}; use one of: ${Object.keys(TASKS).join(', ')}`)
  }
  return task
}

/** Runs `task` on `text`; `args` are the task's extra arguments (embed: the dimension). */
export function analyse (task, text, args) {
  return task(nlp.readDoc(text), args)
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

export function dimensionArg (arg) {
  if (arg === undefined || arg === '') return DEFAULT_DIMENSION
  const n = Number(arg)
  if (!Number.isInteger(n) || n < 1 || n > MAX_DIMENSION) {
    throw new BadInputError(`embed dimension must be an integer in 1..${MAX_DIMENSION}, got ${JSON.stringify(arg)}`)
  }
  return n
}

/** The text of a one-shot input: {"text": "..."} or the plain UTF-8 text itself. */
export function textOfBytes (bytes) {
  let raw
  try {
    raw = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw new BadInputError('input is not valid UTF-8')
  }
  // Only input that looks like a JSON object is read as JSON; anything else is the text itself.
  if (raw.trimStart().startsWith('{')) {
    let value
    try {
      value = JSON.parse(raw)
    } catch (err) {
      throw new BadInputError(`input looks like JSON but does not parse: ${err.message}`)
    }
    return textOfValue(value)
  }
  return nonEmpty(raw)
}

/** The text of a service input: a string, or an object with a string field "text". */
export function textOfValue (value) {
  if (typeof value === 'string') return nonEmpty(value)
  if (typeof value?.text !== 'string') throw new BadInputError('JSON input needs a string field "text"')
  return nonEmpty(value.text)
}

function nonEmpty (text) {
  if (text.trim() === '') throw new BadInputError('input text is empty')
  return text
}
