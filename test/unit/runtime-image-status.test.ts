import test from 'ava'
import { ImageStatusCache } from '../../src/runtime/image-status.ts'
import type { ImageStatus } from '../../src/runtime/types.ts'

function counting (answer: (image: string, call: number) => Promise<ImageStatus>): { inspect: (image: string) => Promise<ImageStatus>, calls: () => number } {
  let n = 0
  return { inspect: async (image) => await answer(image, ++n), calls: () => n }
}

const present = (image: string): ImageStatus => ({ image, present: true, digest: 'sha256:aa' })

test('concurrent status calls for one image cost the engine one inspect', async (t) => {
  const engine = counting(async (image) => await new Promise((resolve) => setTimeout(() => resolve(present(image)), 20)))
  const cache = new ImageStatusCache(engine.inspect, 60_000)
  const answers = await Promise.all(Array.from({ length: 50 }, async () => await cache.get('inframind/echo:1')))
  t.is(engine.calls(), 1)
  t.true(answers.every((a) => a.present && a.digest === 'sha256:aa'))
  await cache.get('inframind/echo:1')
  t.is(engine.calls(), 1, 'answered from the window')
  await cache.get('inframind/other:1')
  t.is(engine.calls(), 2, 'another image is its own entry')
})

test('an answer older than the window is asked again', async (t) => {
  const engine = counting(async (image, call) => call === 1 ? { image, present: false, digest: '' } : present(image))
  const cache = new ImageStatusCache(engine.inspect, 30)
  t.false((await cache.get('inframind/echo:1')).present)
  await new Promise((resolve) => setTimeout(resolve, 60))
  t.true((await cache.get('inframind/echo:1')).present, 'the image loaded since is seen after the window')
  t.is(engine.calls(), 2)
})

test('a failed inspect is not remembered', async (t) => {
  const engine = counting(async (image, call) => {
    if (call === 1) throw new Error('engine busy')
    return present(image)
  })
  const cache = new ImageStatusCache(engine.inspect, 60_000)
  await t.throwsAsync(cache.get('inframind/echo:1'), { message: 'engine busy' })
  t.true((await cache.get('inframind/echo:1')).present)
  t.is(engine.calls(), 2)
})
