/**
 * Fuzzing of every decoder that reads outside input, in two forms: the targets and arbitraries below
 * (used by test/unit/fuzz-*.test.ts for a fast run in `npm test`), and `npm run fuzz -- --minutes N`,
 * which runs the same decoders in-process for N minutes while it sends random and mutated bodies to
 * every method of the public and control gRPC listeners of one real node, then writes
 * bench/results/fuzz.json and fuzz.md.
 *
 * The property everywhere: bytes (or text) from outside either decode or are refused with one of the
 * project's typed errors (an Error subclass with a string `code`), never a TypeError, a RangeError or
 * a crash; a gRPC call always ends with a status, and the node never exits.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import * as grpc from '@grpc/grpc-js'
import protobuf from 'protobufjs'
import {
  CONTROL_SERVICE, NODE_SERVICE, PROTO_PACKAGE, decodeFetchRequest, decodeFetchResponse, decodeOutputChunk, decodeStrict, encode,
  messageType, protoRoot, serviceType, type MessageName
} from '../src/protocol/index.ts'
import { decodeEnvelope } from '../src/envelope/index.ts'
import { decodeReceipt } from '../src/receipt/index.ts'
import { decodeRosterRequest, decodeRosterResponse, parseSignedRosterText } from '../src/roster/index.ts'
import { parseConfig } from '../src/config/index.ts'
import { parseReceiptFile } from '../src/cli/verify.ts'
import { NODE_FILE } from '../src/types.ts'
import { rssMiB, spawnRepoNode } from './proc.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const RESULTS = path.join(ROOT, 'bench', 'results')

/** Errors of the language or the runtime: a decoder that lets one of these out has a bug. */
const UNTYPED = new Set([TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, AggregateError])

/** One of the project's typed errors: an Error subclass of ours with a string `code` (not Node's ERR_*). */
export function isTypedError (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  if (UNTYPED.has(err.constructor as ErrorConstructor) || err.constructor === Error) return false
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' && code !== '' && !code.startsWith('ERR_')
}

/** The request message of every method of the Node and Control services, by method ('Node/SubmitJob'). */
export function requestTypes (): Array<{ service: string, method: string, requestType: MessageName, serverStream: boolean }> {
  const out: Array<{ service: string, method: string, requestType: MessageName, serverStream: boolean }> = []
  for (const service of [NODE_SERVICE, CONTROL_SERVICE]) {
    for (const m of serviceType(service).methodsArray) {
      m.resolve()
      out.push({
        service,
        method: m.name,
        requestType: (m.resolvedRequestType as protobuf.Type).fullName.replace(/^\./, '') as MessageName,
        serverStream: m.responseStream === true
      })
    }
  }
  return out
}

/** Every message type of our package (not grpc.health), by full name. */
export function ourMessageTypes (): MessageName[] {
  const names: MessageName[] = []
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const child of ns.nestedArray) {
      if (child instanceof protobuf.Type) names.push(child.fullName.replace(/^\./, '') as MessageName)
      if (child instanceof protobuf.Namespace || child instanceof protobuf.Type) walk(child)
    }
  }
  const pkg = protoRoot().lookup(PROTO_PACKAGE)
  if (pkg instanceof protobuf.Namespace) walk(pkg)
  return names.sort()
}

export interface Target {
  name: string
  /** Decodes (or parses) outside input; returns normally or throws a typed error. */
  run: (bytes: Uint8Array) => unknown
}

const text = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')

/**
 * Every decoder of outside input that takes bytes or text and is synchronous: gRPC request bodies (the
 * strict decoder of each request type), envelopes, receipts, fetch and roster wire messages, signed
 * roster files, config files and the file parser of `infra verify`.
 */
export function decoderTargets (): Target[] {
  const targets: Target[] = []
  const seen = new Set<string>()
  for (const { requestType } of requestTypes()) {
    if (seen.has(requestType)) continue
    seen.add(requestType)
    targets.push({ name: `decodeStrict(${requestType})`, run: (b) => decodeStrict(requestType, b) })
  }
  targets.push(
    { name: 'decodeEnvelope', run: decodeEnvelope },
    { name: 'decodeReceipt', run: decodeReceipt },
    { name: 'decodeFetchRequest', run: decodeFetchRequest },
    { name: 'decodeFetchResponse', run: decodeFetchResponse },
    // The payload of a worker's ReportOutput envelope (named so its inputs are mutated OutputChunkNotices).
    { name: 'decodeStrict(inframind.v1.OutputChunkNotice)', run: decodeOutputChunk },
    { name: 'decodeRosterRequest', run: decodeRosterRequest },
    { name: 'decodeRosterResponse', run: decodeRosterResponse },
    { name: 'parseSignedRosterText', run: (b) => parseSignedRosterText(text(b), 'roster.json') },
    { name: 'parseConfig', run: (b) => parseConfig(text(b), '', {}) },
    {
      name: 'parseReceiptFile',
      run: (b) => {
        const r = parseReceiptFile(b)
        // It reports failures as a value; a thrown error of any kind would crash `infra verify`.
        if (typeof r.ok !== 'boolean') throw new TypeError('parseReceiptFile returned no verdict')
        return r
      }
    }
  )
  return targets
}

/** Runs one target on one input; the untyped error when the property fails, undefined otherwise. */
export function untypedThrow (target: Target, bytes: Uint8Array): unknown {
  try {
    target.run(bytes)
    return undefined
  } catch (err) {
    return isTypedError(err) ? undefined : (err ?? new Error('threw a nullish value'))
  }
}

// ——— arbitraries ———

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 }
const UINT32 = { min: 0, max: 2 ** 32 - 1 }

function scalar (type: string): fc.Arbitrary<unknown> {
  switch (type) {
    case 'string': return fc.string({ unit: 'binary', maxLength: 24 })
    case 'bytes': return fc.uint8Array({ maxLength: 48 })
    case 'bool': return fc.boolean()
    case 'int32': case 'sint32': case 'sfixed32': return fc.integer(INT32)
    case 'uint32': case 'fixed32': return fc.integer(UINT32)
    case 'int64': case 'sint64': case 'sfixed64': return fc.maxSafeInteger()
    case 'uint64': case 'fixed64': return fc.maxSafeNat()
    case 'double': return fc.double({ noNaN: true })
    case 'float': return fc.float({ noNaN: true })
    default: throw new Error(`no arbitrary for protobuf type ${type}`)
  }
}

function fieldValue (field: protobuf.Field, depth: number): fc.Arbitrary<unknown> {
  const resolved = field.resolvedType
  if (resolved instanceof protobuf.Enum) return fc.constantFrom(...Object.keys(resolved.values))
  if (resolved instanceof protobuf.Type) return messageArbitrary(resolved, depth + 1)
  return scalar(field.type)
}

/**
 * A valid value of `type`, shaped as decodeStrict returns it (every field present, a missing message
 * null, enums by name, 64-bit integers as safe numbers), so encode → decodeStrict must give it back.
 * Below `maxDepth`, nested messages are left out to keep recursive types finite.
 */
export function messageArbitrary (type: protobuf.Type, depth = 0, maxDepth = 3): fc.Arbitrary<Record<string, unknown>> {
  type.resolveAll()
  const parts: Record<string, fc.Arbitrary<unknown>> = {}
  // A oneof holds at most one of its members, and a member that is not set is absent once decoded.
  const choices: Array<fc.Arbitrary<Record<string, unknown>>> = type.oneofsArray.map((o) => fc.oneof(
    fc.constant({}),
    ...o.fieldsArray.map((f) => (f.resolvedType instanceof protobuf.Type && depth >= maxDepth ? fc.constant({}) : fieldValue(f, depth).map((v) => ({ [f.name]: v }))))
  ))
  for (const field of type.fieldsArray) {
    if (field.partOf !== null && field.partOf !== undefined) continue
    const nested = field.resolvedType instanceof protobuf.Type
    if (field.map) {
      parts[field.name] = fc.dictionary(fc.string({ maxLength: 8 }), fieldValue(field, depth), { maxKeys: 3, noNullPrototype: true })
    } else if (field.repeated) {
      parts[field.name] = nested && depth >= maxDepth ? fc.constant([]) : fc.array(fieldValue(field, depth), { maxLength: 3 })
    } else if (nested) {
      parts[field.name] = depth >= maxDepth ? fc.constant(null) : fc.option(fieldValue(field, depth), { nil: null })
    } else {
      parts[field.name] = fieldValue(field, depth)
    }
  }
  const plain = fc.record(parts, { noNullPrototype: true })
  if (choices.length === 0) return plain
  return fc.tuple(plain, ...choices).map(([base, ...picked]) => Object.assign(base, ...picked) as Record<string, unknown>)
}

/** Bytes of a valid message of `name`, then flipped, cut, spliced or extended. */
export function mutatedBytes (name: MessageName): fc.Arbitrary<Uint8Array> {
  const valid = messageArbitrary(messageType(name)).map((v) => encode(name, v as never))
  return fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.nat(255), fc.nat(3)), { minLength: 1, maxLength: 4 }), fc.uint8Array({ maxLength: 16 }))
    .map(([bytes, edits, extra]) => mutate(bytes, edits, extra))
}

function mutate (bytes: Uint8Array, edits: Array<[number, number, number]>, extra: Uint8Array): Uint8Array {
  let b = new Uint8Array(bytes)
  for (const [at, value, kind] of edits) {
    const i = b.length === 0 ? 0 : at % b.length
    if (kind === 0 && b.length > 0) b[i] = value
    else if (kind === 1) b = b.slice(0, i)
    else if (kind === 2) b = new Uint8Array([...b.slice(0, i), ...extra, ...b.slice(i)])
    else b = new Uint8Array([...b, ...extra])
  }
  return b
}

/** Random bytes, protobuf-looking bytes (mutated valid messages of `name`), and text. */
export function hostileBytes (name?: MessageName): fc.Arbitrary<Uint8Array> {
  const options: Array<fc.Arbitrary<Uint8Array>> = [
    fc.uint8Array({ maxLength: 256 }),
    fc.string({ unit: 'binary', maxLength: 128 }).map((s) => new TextEncoder().encode(s)),
    fc.jsonValue({ maxDepth: 3 }).map((v) => new TextEncoder().encode(JSON.stringify(v)))
  ]
  if (name !== undefined) options.push(mutatedBytes(name))
  return fc.oneof(...options)
}

// ——— the long run ———

interface FuzzReport {
  at: string
  minutes: number
  node: { started: boolean, exited: boolean, exitCode: number | null, rssStartMiB: number, rssEndMiB: number, rssSamplesMiB: number[] }
  grpc: { calls: number, byMethod: Record<string, Record<string, number>>, statuses: Record<string, number> }
  decoders: { cases: number, byTarget: Record<string, number>, untypedThrows: number, samples: Array<{ target: string, error: string, inputHex: string }> }
  crashes: number
}

/** One real node from the repo's config.yaml, every listener on a free port; resolves with where it listens. */
async function startNode (dir: string): Promise<{ child: ChildProcess, publicAddress: string, controlAddress: string, stderr: () => string }> {
  const { child, stderr } = await spawnRepoNode(ROOT, dir)
  const deadline = Date.now() + 120_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the node exited at start (${child.exitCode}): ${stderr()}`)
    const info = await readFile(path.join(dir, NODE_FILE), 'utf8').catch(() => undefined)
    if (info !== undefined) {
      const { public: publicAddress, control: controlAddress } = JSON.parse(info) as { public: string, control: string }
      return { child, publicAddress, controlAddress, stderr }
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  child.kill('SIGTERM')
  throw new Error(`the node did not listen within 120 s: ${stderr()}`)
}

const identity = (b: Buffer): Buffer => b

/** Sends `body` to `/<service>/<method>` and resolves with the status name the call ended with. */
function call (client: grpc.Client, service: string, method: string, serverStream: boolean, body: Uint8Array): Promise<string> {
  const name = `/${service}/${method}`
  const deadline = Date.now() + 3_000
  return new Promise((resolve) => {
    if (serverStream) {
      const stream = client.makeServerStreamRequest(name, identity, identity, Buffer.from(body), { deadline })
      let messages = 0
      // A stream that answers is cancelled after its first message (or 300 ms): only the decoding matters.
      let cancelled = false
      const cancel = (): void => { cancelled = true; stream.cancel() }
      const stop = setTimeout(cancel, 300)
      stream.on('data', () => { if (messages++ === 0) cancel() })
      stream.on('error', (err: grpc.ServiceError) => {
        clearTimeout(stop)
        // Our own cancel of a stream that was accepted (it answered, or it waits for events) is no status of the node's.
        resolve(cancelled && err.code === grpc.status.CANCELLED ? `OK (stream, ${messages > 0 ? 'answered' : 'waiting'})` : grpc.status[err.code] ?? String(err.code))
      })
      stream.on('end', () => { clearTimeout(stop); resolve('OK') })
      return
    }
    client.makeUnaryRequest(name, identity, identity, Buffer.from(body), { deadline }, (err) => {
      resolve(err == null ? 'OK' : grpc.status[err.code] ?? String(err.code))
    })
  })
}

function count (map: Record<string, number>, key: string, n = 1): void {
  map[key] = (map[key] ?? 0) + n
}

async function main (): Promise<void> {
  const idx = process.argv.indexOf('--minutes')
  const minutes = idx >= 0 ? Number(process.argv[idx + 1]) : 1
  if (!(minutes > 0)) throw new Error('usage: npm run fuzz -- --minutes N (N > 0)')
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inframind-fuzz-'))
  const report: FuzzReport = {
    at: new Date().toISOString(),
    minutes,
    node: { started: false, exited: false, exitCode: null, rssStartMiB: 0, rssEndMiB: 0, rssSamplesMiB: [] },
    grpc: { calls: 0, byMethod: {}, statuses: {} },
    decoders: { cases: 0, byTarget: {}, untypedThrows: 0, samples: [] },
    crashes: 0
  }
  const node = await startNode(dir)
  report.node.started = true
  let exited = false
  node.child.once('exit', () => { exited = true })
  const clients = {
    [NODE_SERVICE]: new grpc.Client(node.publicAddress, grpc.credentials.createInsecure()),
    [CONTROL_SERVICE]: new grpc.Client(node.controlAddress, grpc.credentials.createInsecure())
  }
  const methods = requestTypes()
  const bodies = methods.map((m) => hostileBytes(m.requestType))
  const targets = decoderTargets()
  const inputs = targets.map((t) => hostileBytes(t.name.startsWith('decodeStrict(') ? t.name.slice(13, -1) as MessageName : 'inframind.v1.SignedEnvelope'))
  try {
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    report.node.rssStartMiB = await rssMiB(node.child.pid)
    const end = Date.now() + minutes * 60_000
    let seed = Date.now()
    // RSS every 10 s, so growth can be told from a plateau.
    let nextSample = Date.now() + 10_000
    while (Date.now() < end && !exited) {
      if (Date.now() >= nextSample) {
        report.node.rssSamplesMiB.push(await rssMiB(node.child.pid))
        nextSample += 10_000
      }
      // A batch of concurrent calls, one per method, then a slice of in-process decoding.
      const batch = methods.map(async (m, i) => {
        const [body] = fc.sample(bodies[i]!, { numRuns: 1, seed: seed++ })
        const status = await call(clients[m.service as keyof typeof clients], m.service, m.method, m.serverStream, body!)
        count(report.grpc.byMethod[`${m.service.split('.').pop()}/${m.method}`] ??= {}, status)
        count(report.grpc.statuses, status)
        report.grpc.calls++
      })
      await Promise.all(batch)
      targets.forEach((target, i) => {
        for (const bytes of fc.sample(inputs[i]!, { numRuns: 10, seed: seed++ })) {
          report.decoders.cases++
          count(report.decoders.byTarget, target.name)
          const err = untypedThrow(target, bytes)
          if (err === undefined) continue
          report.decoders.untypedThrows++
          if (report.decoders.samples.length < 10) {
            report.decoders.samples.push({ target: target.name, error: `${(err as Error).name}: ${(err as Error).message}`.slice(0, 300), inputHex: Buffer.from(bytes).toString('hex').slice(0, 512) })
          }
        }
      })
    }
    report.node.rssEndMiB = await rssMiB(node.child.pid)
  } finally {
    for (const c of Object.values(clients)) c.close()
    report.node.exited = exited
    report.node.exitCode = node.child.exitCode
    if (!report.node.exited) {
      node.child.kill('SIGTERM')
      await new Promise((resolve) => node.child.once('exit', resolve))
    }
    await rm(dir, { recursive: true, force: true })
  }
  report.crashes = (report.node.exited ? 1 : 0) + report.decoders.untypedThrows
  if (report.node.exited) console.error(`the node exited during the fuzz run:\n${node.stderr()}`)
  await mkdir(RESULTS, { recursive: true })
  await writeFile(path.join(RESULTS, 'fuzz.json'), JSON.stringify(report, null, 2) + '\n')
  await writeFile(path.join(RESULTS, 'fuzz.md'), markdown(report))
  process.stdout.write(markdown(report))
  process.exitCode = report.crashes === 0 ? 0 : 1
}

function markdown (r: FuzzReport): string {
  const rows = (m: Record<string, number>): string => Object.entries(m).sort((a, b) => b[1] - a[1]).map(([k, v]) => `| ${k} | ${v} |`).join('\n')
  return `# Fuzz run (${r.at})

${r.minutes} min against one real node (public + control gRPC listeners) and every decoder of outside input in-process.

- gRPC calls: ${r.grpc.calls} (${Object.keys(r.grpc.byMethod).length} methods)
- decoder cases: ${r.decoders.cases} (${Object.keys(r.decoders.byTarget).length} decoders), untyped throws: ${r.decoders.untypedThrows}
- node exited: ${r.node.exited ? `yes (${r.node.exitCode})` : 'no'}
- crashes: **${r.crashes}**
- node RSS: ${r.node.rssStartMiB} MiB at start, ${r.node.rssEndMiB} MiB at end (every 10 s: ${r.node.rssSamplesMiB.join(', ')})

| status | calls |
|---|---|
${rows(r.grpc.statuses)}

| method | statuses |
|---|---|
${Object.entries(r.grpc.byMethod).map(([m, s]) => `| ${m} | ${Object.entries(s).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ')} |`).join('\n')}
${r.decoders.samples.length === 0 ? '' : `\n## Untyped throws\n\n${r.decoders.samples.map((s) => `- ${s.target}: ${s.error} (input ${s.inputHex.slice(0, 80)})`).join('\n')}\n`}`
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}
