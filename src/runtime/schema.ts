import type { IoSchema } from '../config/types.ts'

/** Why bytes do not fit a schema, or undefined when they do. */
export function schemaViolation (schema: IoSchema, bytes: Uint8Array): string | undefined {
  if (schema === 'bytes') return undefined
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return `expected ${schema} but the bytes are not valid UTF-8`
  }
  if (schema === 'text') return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return `expected ${schema} but the bytes are not JSON (${(err as Error).message})`
  }
  return valueViolation(schema, value)
}

/**
 * Why an already parsed JSON value, serialised with JSON.stringify, would not fit a text, json or
 * embedding schema (service outputs: the value is checked as is instead of being parsed again).
 */
export function valueViolation (schema: IoSchema, value: unknown): string | undefined {
  if (schema !== 'embedding<float>') return undefined
  if (!Array.isArray(value)) return 'expected embedding<float>: a JSON array of numbers, got ' + typeName(value)
  const bad = value.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v))
  if (bad !== -1) return `expected embedding<float>: element ${bad} is ${typeName(value[bad])}, not a finite number`
  return undefined
}

function typeName (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'string' ? 'a string' : `a ${typeof value}`
}

export const IO_SCHEMAS: readonly IoSchema[] = ['text', 'json', 'bytes', 'embedding<float>']
