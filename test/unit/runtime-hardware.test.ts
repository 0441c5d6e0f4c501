import test from 'ava'
import { detectGpus, detectHardware, parseNvidiaSmi } from '../../src/runtime/index.ts'

test('parseNvidiaSmi reads name and memory of each GPU', (t) => {
  const out = 'NVIDIA GeForce RTX 3090, 24576 MiB\nTesla T4, 15360 MiB\n\n'
  t.deepEqual(parseNvidiaSmi(out), [
    { name: 'NVIDIA GeForce RTX 3090', memoryBytes: 24576 * 1024 * 1024 },
    { name: 'Tesla T4', memoryBytes: 15360 * 1024 * 1024 }
  ])
})

test('parseNvidiaSmi keeps commas inside a name and skips garbage', (t) => {
  t.deepEqual(parseNvidiaSmi('Weird, Name, 1 GiB\nNo devices were found\n, 5 MiB\nX, lots\n'), [
    { name: 'Weird, Name', memoryBytes: 1024 ** 3 }
  ])
})

test('detectGpus is an honest empty list when nvidia-smi does not exist', async (t) => {
  t.deepEqual(await detectGpus({ nvidiaSmi: '/nonexistent/nvidia-smi' }), [])
})

test('detectHardware reports this machine', async (t) => {
  const hw = await detectHardware({ nvidiaSmi: '/nonexistent/nvidia-smi' })
  t.is(hw.arch, process.arch)
  t.is(hw.platform, process.platform)
  t.true(hw.cpuCores >= 1)
  t.true(hw.memoryBytes > 0)
  t.true(hw.cpuModel.length > 0)
  t.deepEqual(hw.gpus, [])
})
