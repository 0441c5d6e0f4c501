/**
 * Property-based fuzzing of the files a user hands the node or the CLI: receipts given to `infra
 * verify` (stdin and a file: exit 0, 1 or 2, never a throw), config files (random YAML-ish text and
 * the shipped config.yaml with keys given wrong values: a ConfigError, never a TypeError) and signed
 * roster files (a RosterMalformedError or an envelope).
 */
import test from 'ava'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { parse, stringify } from 'yaml'
import { envelopeToJson, signEnvelope } from '../../src/envelope/index.ts'
import { identityFromSeed } from '../../src/identity/index.ts'
import { ConfigError, parseConfig } from '../../src/config/index.ts'
import { parseSignedRosterText } from '../../src/roster/index.ts'
import { RECEIPT_PAYLOAD_TYPE } from '../../src/receipt/index.ts'
import { runVerify } from '../../src/cli/verify.ts'
import { hostileBytes, isTypedError, mutatedBytes } from '../../bench/fuzz.ts'

const RUNS = 100
const signer = identityFromSeed(new Uint8Array(32).fill(3))

let dir = ''
test.before(() => { dir = mkdtempSync(join(tmpdir(), 'inframind-fuzz-')) })
test.after.always(() => { rmSync(dir, { recursive: true, force: true }) })

async function verify (argv: string[], stdin?: Uint8Array): Promise<number> {
  return await runVerify(argv, { out: () => {}, err: () => {}, env: {}, stdin: async () => stdin ?? new Uint8Array(0) })
}

/** JSON receipts: envelopes whose fields are random, or valid envelopes around random payloads, maybe inside a job. */
const jsonReceipt = fc.oneof(
  fc.record({ payload_type: fc.oneof(fc.constant(RECEIPT_PAYLOAD_TYPE), fc.string()), payload: fc.base64String(), public_key: fc.base64String(), signature: fc.base64String() }, { requiredKeys: [] }),
  fc.oneof(hostileBytes('inframind.v1.Receipt'), mutatedBytes('inframind.v1.Receipt')).map((payload) => envelopeToJson(signEnvelope(signer, RECEIPT_PAYLOAD_TYPE, payload))),
  fc.dictionary(fc.constantFrom('receipt', 'job', 'payload_type', 'payloadType'), fc.jsonValue({ maxDepth: 2 }))
).chain((env) => fc.constantFrom<unknown>(env, { receipt: env }, { job: { receipt: env } }, { job: env }))
  .map((v) => new TextEncoder().encode(JSON.stringify(v)))

const receiptInput = fc.oneof(hostileBytes('inframind.v1.SignedEnvelope'), jsonReceipt)

test('infra verify -: any stdin exits 0, 1 or 2', async (t) => {
  await fc.assert(fc.asyncProperty(receiptInput, fc.boolean(), async (bytes, json) => {
    const code = await verify(json ? ['-', '--json'] : ['-'], bytes)
    return code === 0 || code === 1 || code === 2
  }), { numRuns: RUNS })
  t.pass()
})

test('infra verify FILE --output FILE: any files exit 0, 1 or 2', async (t) => {
  let n = 0
  await fc.assert(fc.asyncProperty(receiptInput, fc.uint8Array({ maxLength: 32 }), async (bytes, output) => {
    const file = join(dir, `r${n}.bin`)
    const out = join(dir, `o${n++}.bin`)
    writeFileSync(file, bytes)
    writeFileSync(out, output)
    const code = await verify([file, '--output', out])
    return code === 0 || code === 1 || code === 2
  }), { numRuns: 50 })
  t.pass()
})

test('infra verify: random arguments exit 0, 1 or 2', async (t) => {
  await fc.assert(fc.asyncProperty(fc.array(fc.oneof(fc.constantFrom('-', '--json', '--output', '-h', '--x', join(dir, 'missing')), fc.string()), { maxLength: 4 }), async (argv) => {
    const code = await verify(argv, new Uint8Array([0x0a]))
    return code === 0 || code === 1 || code === 2
  }), { numRuns: RUNS })
  t.pass()
})

function configProblem (text: string): void {
  try {
    parseConfig(text, join(dir, 'config.yaml'), {})
  } catch (err) {
    if (!(err instanceof ConfigError) || !isTypedError(err)) throw err
  }
}

const YAML_TOKENS = [
  'node:', 'api:', 'mesh:', 'containers:', 'roles:', '  ', '    ', '\n', '- ', ': ', '[', ']', '{', '}', ',', '&a ', '*a', '<<: *a',
  '!!binary ', '!!str ', '!!int ', '"', "'", '# c', 'true', 'null', '~', '64m', '-1', '1e999', '0x10', '.inf', '|', '>', '---', '...', '\t', '?', '%YAML 1.2'
]
const yamlish = fc.array(fc.oneof(fc.constantFrom(...YAML_TOKENS), fc.string({ maxLength: 6 })), { maxLength: 40 }).map((parts) => parts.join(''))

test('parseConfig: YAML-ish text gives a config or a ConfigError', (t) => {
  fc.assert(fc.property(fc.oneof(yamlish, fc.string({ unit: 'binary', maxLength: 200 })), (text) => { configProblem(text) }), { numRuns: RUNS * 2 })
  t.pass()
})

const shipped = parse(readFileSync(new URL('../../config.yaml', import.meta.url), 'utf8')) as Record<string, unknown>

/** Every path to a value in the shipped config (sections, keys, list items), as key lists. */
function paths (value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix]
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...prefix, i])))
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...prefix, k]))
  return out
}
const configPaths = paths(shipped).filter((p) => p.length > 0)

const wrongValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom<unknown>(null, -1, 0, 1e300, -1e-300, 'x', '', '64q', '-4m', '0.0.0.0:99999', [], {}, [null], { a: 1 }, true, '~/', '/ip4/x')
)

test('parseConfig: the shipped config with wrong values gives a ConfigError, never a TypeError', (t) => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(...configPaths), wrongValue, fc.boolean()), { minLength: 1, maxLength: 3 }), (edits) => {
    const doc = structuredClone(shipped)
    for (const [p, value, asNewKey] of edits) {
      let at: any = doc
      for (const k of p.slice(0, -1)) {
        if (at === null || typeof at !== 'object') break
        at = at[k]
      }
      if (at === null || typeof at !== 'object') continue
      at[asNewKey ? `${String(p.at(-1))}_x` : p.at(-1)!] = value
    }
    configProblem(stringify(doc))
  }), { numRuns: RUNS * 2 })
  t.pass()
})

test('parseSignedRosterText: any text gives an envelope or a typed error', (t) => {
  const rosterText = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc.record({ payload_type: fc.string(), payload: fc.base64String(), public_key: fc.base64String(), signature: fc.oneof(fc.base64String(), fc.string()) }, { requiredKeys: [] }).map((v) => JSON.stringify(v))
  )
  fc.assert(fc.property(rosterText, (text) => {
    try {
      parseSignedRosterText(text, 'roster.json')
    } catch (err) {
      if (!isTypedError(err)) throw err
    }
  }), { numRuns: RUNS * 2 })
  t.pass()
})
