import { generateKeyPairSync } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { signEnvelope, verifyEnvelope } from '../src/envelope/index.ts'
import { signEnvelopeNacl, verifyEnvelopeNacl } from '../src/envelope/reference.ts'
import { encodeReceipt, RECEIPT_PAYLOAD_TYPE, sha256, verifyReceipt } from '../src/receipt/index.ts'
import { nodeIdFromPublicKey } from '../src/identity/index.ts'
import type { Identity } from '../src/identity/types.ts'
import { identityFromSeed } from '../src/identity/index.ts'
import { computeJobHash, receiptHash, signReceipt } from '../src/receipt/index.ts'
import { chooseValidators, signAttestation, signCertificate, verifyCertificate } from '../src/verification/index.ts'
import type { SignedEnvelope } from '../src/envelope/types.ts'

interface Rates { signPerSecond: number, verifyPerSecond: number }

/** Runs fn repeatedly for about `seconds` and returns calls per second. */
function rate (seconds: number, fn: () => void): number {
  for (let i = 0; i < 20; i++) fn()
  const until = performance.now() + seconds * 1000
  let n = 0
  const start = performance.now()
  while (performance.now() < until) {
    for (let i = 0; i < 10; i++) fn()
    n += 10
  }
  return n / ((performance.now() - start) / 1000)
}

/**
 * OpenSSL's own ed25519 verifications per second on one core (`openssl speed ed25519`), the ceiling
 * for anything built on node:crypto: a certificate holds 4 signatures, so it cannot verify faster
 * than a quarter of this. Undefined when the openssl command is missing or says something else.
 */
function opensslVerifyPerSecond (seconds: number): number | undefined {
  const run = spawnSync('openssl', ['speed', '-seconds', String(Math.max(1, Math.round(seconds))), 'ed25519'], { encoding: 'utf8', timeout: 60_000 })
  const line = (run.stdout ?? '').split('\n').find((l) => /Ed25519/.test(l) && /\d+\.\d+\s+\d+(\.\d+)?\s*$/.test(l))
  const value = Number(line?.trim().split(/\s+/).at(-1))
  return Number.isFinite(value) && value > 0 ? value : undefined
}

/** A q=2 re-execution certificate as a scheduler issues it (4 signatures inside: scheduler, worker, two validators), and its output. */
export function sampleCertificate (): { env: SignedEnvelope, output: Uint8Array } {
  const id = (n: number): Identity => identityFromSeed(new Uint8Array(32).fill(n))
  const [worker, scheduler, v1, v2, v3] = [id(1), id(2), id(3), id(4), id(5)] as [Identity, Identity, Identity, Identity, Identity]
  const output = new TextEncoder().encode('a certified output\n')
  const input = new TextEncoder().encode('an input')
  const jobHash = computeJobHash('bench-cert', ['echo'], sha256(input))
  const receipt = signReceipt(worker, {
    jobId: 'bench-cert', jobHash, inputHash: sha256(input), outputHash: sha256(output),
    steps: [{ containerId: 'echo', imageDigest: 'sha256:' + '0'.repeat(64), outputHash: sha256(output), exitCode: 0 }],
    status: 'success', exitCode: 0, latencyMs: 3, startedAtMs: 1, finishedAtMs: 4, workerId: worker.nodeId, schedulerId: scheduler.nodeId, error: ''
  })
  const validators = [v1, v2, v3]
  const chosen = chooseValidators(jobHash, validators.map((v) => v.nodeId), worker.nodeId, 2)
  const attestations = chosen.map((vid) => signAttestation(validators.find((v) => v.nodeId === vid) as Identity, {
    receiptHash: receiptHash(receipt), jobId: 'bench-cert', workerId: worker.nodeId, validatorId: vid, verdict: 'agree', method: 'reexecution', outputHash: sha256(output), reason: '', atMs: 5
  }))
  const env = signCertificate(scheduler, { jobId: 'bench-cert', policy: { method: 'reexecute', validators: 2, quorum: 2 }, receipt, attestations, chosen, schedulerId: scheduler.nodeId, issuedAtMs: 6, resolution: '', outputHash: sha256(output) })
  return { env, output }
}

export function benchSigning (opts: { seconds: number }): { payloadBytes: number, nodeCrypto: Rates, tweetnacl: Rates, receiptVerifyPerSecond: number, certificateVerifyPerSecond: number, opensslVerifyPerSecond?: number } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const jwk = publicKey.export({ format: 'jwk' })
  const pub = new Uint8Array(Buffer.from(jwk.x as string, 'base64url'))
  const seed = new Uint8Array(Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url'))
  const identity: Identity = { nodeId: nodeIdFromPublicKey(pub), publicKey: pub, privateKey, seed, keyFile: '' }
  const payload = encodeReceipt({
    jobId: 'bench-job', jobHash: sha256(new Uint8Array([1])), inputHash: sha256(new Uint8Array([2])), outputHash: sha256(new Uint8Array([3])),
    steps: [{ containerId: 'echo', imageDigest: 'sha256:' + '0'.repeat(64), outputHash: sha256(new Uint8Array([3])), exitCode: 0 }],
    status: 'success', exitCode: 0, latencyMs: 12, startedAtMs: Date.now(), finishedAtMs: Date.now(), workerId: identity.nodeId, schedulerId: '', error: ''
  })
  const env = signEnvelope(identity, RECEIPT_PAYLOAD_TYPE, payload)
  const nacl = signEnvelopeNacl(identity, RECEIPT_PAYLOAD_TYPE, payload)
  if (Buffer.compare(Buffer.from(env.signature), Buffer.from(nacl.signature)) !== 0) throw new Error('node:crypto and tweetnacl signatures differ')
  const cert = sampleCertificate()
  return {
    payloadBytes: payload.byteLength,
    // `infra verify cert.json --output out.bin`'s whole check, on one core.
    certificateVerifyPerSecond: rate(opts.seconds, () => { if (!verifyCertificate(cert.env, { output: cert.output }).valid) throw new Error('valid certificate rejected') }),
    // Measured right after, on the same core: what the hardware allows at all.
    opensslVerifyPerSecond: opensslVerifyPerSecond(opts.seconds),
    // The full check a validator makes: decode, payload type, signature, worker id matches the key.
    receiptVerifyPerSecond: rate(opts.seconds, () => { if (!verifyReceipt(env).valid) throw new Error('valid receipt rejected') }),
    nodeCrypto: {
      signPerSecond: rate(opts.seconds, () => signEnvelope(identity, RECEIPT_PAYLOAD_TYPE, payload)),
      verifyPerSecond: rate(opts.seconds, () => verifyEnvelope(env, { payloadType: RECEIPT_PAYLOAD_TYPE }))
    },
    tweetnacl: {
      signPerSecond: rate(opts.seconds, () => signEnvelopeNacl(identity, RECEIPT_PAYLOAD_TYPE, payload)),
      verifyPerSecond: rate(opts.seconds, () => verifyEnvelopeNacl(env, { payloadType: RECEIPT_PAYLOAD_TYPE }))
    }
  }
}
