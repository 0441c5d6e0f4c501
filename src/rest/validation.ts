import type { FastifySchemaValidationError } from 'fastify'
import { InvalidRequestError } from './errors.ts'

/** The part of a request a schema checked (fastify's SchemaErrorDataVar). */
export type RequestPart = 'body' | 'headers' | 'params' | 'querystring'

/**
 * A schema mismatch as one sentence naming the field, what it must be, and (for job bodies) what a
 * request looks like: `body.containers[0] must be string; send {"containers": [...], ...}`.
 */
export function validationError (errors: FastifySchemaValidationError[], dataVar: RequestPart, hint = ''): InvalidRequestError {
  // An if/then/else failure is reported after the rule that failed inside it; that rule is the useful one.
  const first = errors.find((e) => e.keyword !== 'if') ?? errors[0]
  const root = dataVar === 'querystring' ? 'query' : dataVar
  const where = root + pathOf(first?.instancePath ?? '')
  const text = first === undefined ? 'is invalid' : describe(first, where)
  return new InvalidRequestError(hint === '' ? text : `${text}; ${hint}`)
}

function describe (e: FastifySchemaValidationError, where: string): string {
  const p = e.params
  switch (e.keyword) {
    case 'required':
      return `${where}.${String(p.missingProperty)} is required`
    case 'type': {
      const types = Array.isArray(p.type) ? p.type : String(p.type).split(',')
      return `${where} must be ${types.map((t) => article(String(t))).join(' or ')}`
    }
    case 'enum':
      return `${where} must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`
    default:
      return `${where} ${e.message ?? 'is invalid'}`
  }
}

function article (type: string): string {
  if (type === 'array') return 'a list'
  if (type === 'object') return 'an object'
  if (type === 'integer') return 'an integer'
  return `a ${type}`
}

/** "/containers/0" → ".containers[0]"; "/3/data" → "[3].data" (JSON pointer escapes undone). */
function pathOf (pointer: string): string {
  let out = ''
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~')
    out += /^\d+$/.test(part) ? `[${part}]` : `.${part}`
  }
  return out
}
