/** What this machine offers to jobs: CPU, memory, architecture and NVIDIA GPUs. */
import { execFile } from 'node:child_process'
import { arch, availableParallelism, cpus, platform, totalmem } from 'node:os'
import { NVIDIA_SMI_TIMEOUT_MS } from './constants.ts'

export interface GpuInfo {
  name: string
  memoryBytes: number
}

export interface HardwareInfo {
  /** Node's name for the CPU architecture (x64, arm64, ...). */
  arch: string
  /** Node's name for the OS (linux, darwin, ...). */
  platform: string
  cpuModel: string
  cpuCores: number
  memoryBytes: number
  /** NVIDIA GPUs reported by nvidia-smi; empty when there is none or no driver. */
  gpus: GpuInfo[]
}

export interface DetectHardwareOptions {
  /** nvidia-smi binary to ask (default: `nvidia-smi` on PATH). */
  nvidiaSmi?: string
  timeoutMs?: number
}

export async function detectHardware (opts: DetectHardwareOptions = {}): Promise<HardwareInfo> {
  return {
    arch: arch(),
    platform: platform(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cpuCores: availableParallelism(),
    memoryBytes: totalmem(),
    gpus: await detectGpus(opts)
  }
}

/** GPUs via nvidia-smi. Missing binary, no driver or any failure all mean "no usable GPU". */
export async function detectGpus (opts: DetectHardwareOptions = {}): Promise<GpuInfo[]> {
  const binary = opts.nvidiaSmi ?? 'nvidia-smi'
  const timeout = opts.timeoutMs ?? NVIDIA_SMI_TIMEOUT_MS
  return await new Promise((resolve) => {
    execFile(binary, ['--query-gpu=name,memory.total', '--format=csv,noheader'], { timeout }, (err, stdout) => {
      resolve(err === null ? parseNvidiaSmi(stdout) : [])
    })
  })
}

const UNIT_BYTES: Record<string, number> = { KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 }

/** Parses `name, 24576 MiB` lines of `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader`. */
export function parseNvidiaSmi (stdout: string): GpuInfo[] {
  const gpus: GpuInfo[] = []
  for (const line of stdout.split('\n')) {
    const comma = line.lastIndexOf(',')
    if (comma === -1) continue
    const name = line.slice(0, comma).trim()
    const match = /^\s*(\d+(?:\.\d+)?)\s*(KiB|MiB|GiB|TiB)\s*$/.exec(line.slice(comma + 1))
    if (name === '' || match?.[1] === undefined || match[2] === undefined) continue
    gpus.push({ name, memoryBytes: Math.round(Number(match[1]) * (UNIT_BYTES[match[2]] ?? 1)) })
  }
  return gpus
}
