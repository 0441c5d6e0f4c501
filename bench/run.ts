/**
 * `npm run bench`: side-by-side measurements in one run, written to bench/results/.
 *   1. one-shot job through the node (gRPC submit → result) vs `docker run --rm` of the same image and input, paired;
 *   2. envelope sign/verify per second, node:crypto vs tweetnacl, on the same key and bytes;
 *   3. idle node RSS (a real node process, after it settles).
 * Timings are not asserted anywhere: this machine is shared and noisy, so we record ratios.
 */
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { benchOneShot } from './oneshot.ts'
import { benchSigning } from './signing.ts'
import { benchIdleRss } from './idle.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const RESULTS = path.join(ROOT, 'bench', 'results')

export interface BenchContext { root: string, tmp: string }

async function dockerVersion (): Promise<string> {
  return await new Promise((resolve) => {
    const p = spawn('docker', ['version', '--format', '{{.Server.Version}}'])
    let out = ''
    p.stdout.on('data', (d: Buffer) => { out += d.toString() })
    p.on('close', () => resolve(out.trim()))
    p.on('error', () => resolve('unknown'))
  })
}

async function main (): Promise<void> {
  const quick = process.argv.includes('--quick')
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'inframind-bench-'))
  const ctx: BenchContext = { root: ROOT, tmp }
  try {
    process.stderr.write('bench: one-shot job through the node vs docker run --rm (paired)\n')
    const oneShot = await benchOneShot(ctx, { pairs: quick ? 5 : 30 })
    process.stderr.write('bench: envelope signing, node:crypto vs tweetnacl\n')
    const signing = benchSigning({ seconds: quick ? 0.5 : 2 })
    process.stderr.write('bench: idle node RSS\n')
    const idle = await benchIdleRss(ctx, { settleMs: quick ? 2000 : 5000 })

    const results = {
      at: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? '', memoryBytes: os.totalmem(), node: process.version, docker: await dockerVersion() },
      oneShot,
      signing,
      idle,
      targets: {
        oneShotRatio: { target: '<= 1.0', value: oneShot.ratioOfMedians, met: oneShot.ratioOfMedians <= 1.0 },
        verifyPerSecond: { target: '>= 4000', value: signing.receiptVerifyPerSecond, met: signing.receiptVerifyPerSecond >= 4000 },
        idleRssMiB: { target: '<= 150', value: idle.rssMiB, met: idle.rssMiB <= 150 }
      }
    }
    await mkdir(RESULTS, { recursive: true })
    await writeFile(path.join(RESULTS, 'latest.json'), JSON.stringify(results, null, 2) + '\n')
    const md = render(results)
    await writeFile(path.join(RESULTS, 'latest.md'), md)
    process.stdout.write(md)
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
}

function render (r: any): string {
  const ms = (v: number): string => `${v.toFixed(1)} ms`
  return [
    `# Bench results (${r.at})`,
    '',
    `Machine: ${r.machine.cpus} x ${r.machine.cpuModel}, ${(r.machine.memoryBytes / 2 ** 30).toFixed(0)} GiB, Node ${r.machine.node}, Docker ${r.machine.docker}`,
    '',
    '| measurement | node | baseline | ratio | target |',
    '|---|---|---|---|---|',
    `| one-shot echo job, median of ${r.oneShot.pairs} pairs | ${ms(r.oneShot.node.p50)} (p90 ${ms(r.oneShot.node.p90)}) | docker run --rm: ${ms(r.oneShot.dockerRun.p50)} (p90 ${ms(r.oneShot.dockerRun.p90)}) | ${r.oneShot.ratioOfMedians.toFixed(2)} (median paired ${r.oneShot.medianPairedRatio.toFixed(2)}) | <= 1.0 ${r.targets.oneShotRatio.met ? 'met' : 'NOT met'} |`,
    `| ed25519 sign / s | node:crypto ${r.signing.nodeCrypto.signPerSecond.toFixed(0)} | tweetnacl ${r.signing.tweetnacl.signPerSecond.toFixed(0)} | ${(r.signing.nodeCrypto.signPerSecond / r.signing.tweetnacl.signPerSecond).toFixed(0)}x | |`,
    `| ed25519 envelope verify / s | node:crypto ${r.signing.nodeCrypto.verifyPerSecond.toFixed(0)} | tweetnacl ${r.signing.tweetnacl.verifyPerSecond.toFixed(0)} | ${(r.signing.nodeCrypto.verifyPerSecond / r.signing.tweetnacl.verifyPerSecond).toFixed(0)}x | |`,
    `| full receipt verify / s (decode + signature + worker id), one core | ${r.signing.receiptVerifyPerSecond.toFixed(0)} | | | >= 4000 ${r.targets.verifyPerSecond.met ? 'met' : 'NOT met'} |`,
    `| idle node RSS | ${r.idle.rssMiB.toFixed(1)} MiB | | | <= 150 MiB ${r.targets.idleRssMiB.met ? 'met' : 'NOT met'} |`,
    '',
    `One-shot: both sides run the same image (${r.oneShot.image}) with the same sandbox flags and the same ${r.oneShot.inputBytes}-byte input; the node side is a gRPC SubmitJob then WatchJob until the result, the baseline is the docker CLI. Pairs alternate which side runs first.`,
    ''
  ].join('\n')
}

main().catch(async (err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})

