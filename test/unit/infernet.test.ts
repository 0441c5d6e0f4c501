import test from 'ava'
import { containerConfig } from '../../src/config/index.ts'
import type { ContainerConfig, IoSchema } from '../../src/config/types.ts'
import { decodeInfernetAnswer, encodeInfernetRequest, infernetHttpError, JOB_LOCATION } from '../../src/runtime/infernet.ts'

// The Infernet container contract's encoding and decoding (src/runtime/infernet.ts), without a server:
// the integration test (test/integration/infernet-container.test.ts) runs the same through a container.

const DIGEST = `sha256:${'b'.repeat(64)}`
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

function infernet (inputSchema: IoSchema = 'json', outputSchema: IoSchema = 'json', maxOutputBytes = 1024): ContainerConfig {
  return containerConfig({ id: 'inf', image: 'x/inf:1', digest: DIGEST, mode: 'service', protocol: 'infernet', inputSchema, outputSchema, maxOutputBytes })
}

function body (container: ContainerConfig, input: Uint8Array, requiresProof?: boolean): { raw: string, parsed: Record<string, unknown> } {
  const raw = encodeInfernetRequest({ jobId: 'j1', container, input, origin: { ip: '10.0.0.9', peerId: '', delegate: '' }, ...(requiresProof === undefined ? {} : { requiresProof }) })
  return { raw, parsed: JSON.parse(raw) as Record<string, unknown> }
}

test('the body is {source, destination, data, requires_proof} in that order, offchain to offchain, and nothing else', (t) => {
  const { raw, parsed } = body(infernet(), enc('{"hello": "world"}'), true)
  t.deepEqual(Object.keys(parsed), ['source', 'destination', 'data', 'requires_proof'])
  t.deepEqual(parsed, { source: JOB_LOCATION.offchain, destination: JOB_LOCATION.offchain, data: { hello: 'world' }, requires_proof: true })
  t.is(JOB_LOCATION.offchain, 1)
  t.false(raw.includes('10.0.0.9'), 'the origin is ours, not part of Infernet\'s body')
  t.false(raw.includes('j1'), 'nor is the job id')
  t.is(body(infernet(), enc('1')).parsed.requires_proof, false, 'no proof asked = false')
})

test('data by input_schema: json as the value (digits kept), text as a string, bytes sniffed', (t) => {
  t.true(body(infernet('json'), enc('{"n": 123456789012345678901234567890}')).raw.includes('"data":{"n": 123456789012345678901234567890}'), 'spliced as sent')
  t.deepEqual(body(infernet('embedding<float>'), enc('[0.5, 1]')).parsed.data, [0.5, 1])
  t.is(body(infernet('text'), enc('{"looks": "like json"}')).parsed.data, '{"looks": "like json"}', 'text stays a string')
  t.deepEqual(body(infernet('bytes'), enc('{"a": [1, 2]}')).parsed.data, { a: [1, 2] })
  t.is(body(infernet('bytes'), enc('42')).parsed.data, 42)
  t.is(body(infernet('bytes'), enc('plain words')).parsed.data, 'plain words')
  t.is(body(infernet('bytes'), enc('')).parsed.data, '')
  t.deepEqual(body(infernet('bytes'), new Uint8Array([0, 0xff, 0xfe])).parsed.data, { base64: 'AP/+' })
})

test('input that is not JSON for a json container is refused before anything is sent', (t) => {
  const err = t.throws(() => body(infernet('json'), enc('not json')))
  t.is(err?.name, 'InputSchemaError')
  t.is((err as Error & { code: string }).code, 'INVALID_INPUT')
  // Two values would smuggle a second body field in: refused the same way.
  t.is((t.throws(() => body(infernet('json'), enc('1,"requires_proof":true'))) as Error & { code: string }).code, 'INVALID_INPUT')
})

test('the answer\'s JSON text is the output as sent, without the whitespace around it', (t) => {
  const out = decodeInfernetAnswer(infernet(), enc('\n {"output": "x", "big": 123456789012345678901234567890}\r\n'), DIGEST)
  t.is(Buffer.from(out).toString(), '{"output": "x", "big": 123456789012345678901234567890}')
  t.is(Buffer.from(decodeInfernetAnswer(infernet(), enc('"just a string"'), DIGEST)).toString(), '"just a string"')
  t.is(Buffer.from(decodeInfernetAnswer(infernet('json', 'embedding<float>'), enc('[1,2]'), DIGEST)).toString(), '[1,2]')
})

test('a 2xx that is not JSON, empty, not UTF-8, too large or off-schema fails with a code and a reason', (t) => {
  const cases: Array<[ContainerConfig, Uint8Array, string, string, RegExp]> = [
    [infernet(), enc('<html>oops</html>'), 'InfernetResponseError', 'SERVICE_BAD_RESPONSE', /Infernet container inf answered 2xx but the body is not JSON \(it starts with "<html>oops<\/html>"\)/],
    [infernet(), enc(''), 'InfernetResponseError', 'SERVICE_BAD_RESPONSE', /the body is empty/],
    [infernet(), new Uint8Array([0x22, 0xff, 0x22]), 'InfernetResponseError', 'SERVICE_BAD_RESPONSE', /not UTF-8 text/],
    [infernet('json', 'json', 8), enc('{"output": "far too long"}'), 'OutputTooLargeError', 'OUTPUT_TOO_LARGE', /max_output_bytes of 8/],
    [infernet('json', 'embedding<float>'), enc('{"output": 1}'), 'OutputSchemaError', 'OUTPUT_SCHEMA', /embedding/]
  ]
  for (const [container, payload, name, code, message] of cases) {
    const err = t.throws(() => decodeInfernetAnswer(container, payload, DIGEST)) as Error & { code: string, imageDigest: string }
    t.is(err.name, name)
    t.is(err.code, code)
    t.regex(err.message, message)
    t.is(err.imageDigest, DIGEST, 'the failure names the image that answered')
  }
})

test('error answers: the message of every shape Infernet containers use, HTML reduced to its words', (t) => {
  const cases: Array<[string, string, string]> = [
    ['{"code": "400", "name": "Bad Request", "description": "Proofs are not supported"}', '', 'Bad Request: Proofs are not supported'],
    ['{"error": "no such model"}', '', 'no such model'],
    ['{"error": {"code": "BAD_INPUT", "message": "needs text"}}', 'BAD_INPUT', 'needs text'],
    ['{"detail": "validation failed"}', '', 'validation failed'],
    ['<!doctype html>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>', '', '500 Internal Server Error Internal Server Error'],
    ['upstream timed out\n', '', 'upstream timed out'],
    ['[1, 2]', '', '[1, 2]']
  ]
  for (const [payload, code, message] of cases) {
    const err = infernetHttpError('inf', 503, enc(payload), DIGEST)
    t.is(err.name, 'ServiceHttpError')
    t.is(err.code, 'SERVICE_HTTP_ERROR')
    t.is(err.status, 503)
    t.is(err.serviceCode, code, payload)
    t.is(err.serviceMessage, message, payload)
  }
  t.is(infernetHttpError('inf', 500, enc('x'.repeat(5000)), DIGEST).serviceMessage.length, 512, 'bounded')
})
