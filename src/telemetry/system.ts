import os from 'node:os'

export interface SystemSample {
  /** Process CPU use since the previous sample, percent of one core. */
  cpuPercent: number
  rssBytes: number
  memoryTotalBytes: number
  memoryUsedBytes: number
}

/** Samples process CPU as a delta between calls, so each caller sees recent use rather than a lifetime average. */
export function systemSampler (): () => SystemSample {
  let lastCpu = process.cpuUsage()
  let lastAt = process.hrtime.bigint()
  return () => {
    const now = process.hrtime.bigint()
    const cpu = process.cpuUsage()
    const elapsedUs = Number(now - lastAt) / 1000
    const usedUs = (cpu.user - lastCpu.user) + (cpu.system - lastCpu.system)
    lastCpu = cpu
    lastAt = now
    const total = os.totalmem()
    return {
      cpuPercent: elapsedUs > 0 ? Math.round((usedUs / elapsedUs) * 1000) / 10 : 0,
      rssBytes: process.memoryUsage.rss(),
      memoryTotalBytes: total,
      memoryUsedBytes: total - os.freemem()
    }
  }
}
