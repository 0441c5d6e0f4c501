import test from 'ava'
import { TypedEmitter } from '../../src/events.ts'
import type { Logger } from '../../src/telemetry/logger.ts'

interface Events { a: number, b: string }

/** A logger that records warn() calls (the emitter reports a throwing listener there). */
function recordingLogger (): { logger: Logger, warned: Array<Record<string, unknown>> } {
  const warned: Array<Record<string, unknown>> = []
  const logger = { warn: (fields: Record<string, unknown>) => { warned.push(fields) } } as unknown as Logger
  return { logger, warned }
}

test('listeners get only their event, in order, until they unsubscribe', (t) => {
  const e = new TypedEmitter<Events>()
  const seen: string[] = []
  const offA = e.on('a', (n) => seen.push(`a1:${n}`))
  e.on('a', (n) => seen.push(`a2:${n}`))
  e.on('b', (s) => seen.push(`b:${s}`))
  e.emit('a', 1)
  e.emit('b', 'x')
  offA()
  offA()
  e.emit('a', 2)
  t.deepEqual(seen, ['a1:1', 'a2:1', 'b:x', 'a2:2'])
  t.is(e.listenerCount('a'), 1)
})

test('a listener that throws is logged and the others, and the emitter, carry on', (t) => {
  const { logger, warned } = recordingLogger()
  const e = new TypedEmitter<Events>(logger)
  const seen: number[] = []
  const boom = new Error('boom')
  e.on('a', () => { throw boom })
  e.on('a', (n) => seen.push(n))
  t.notThrows(() => e.emit('a', 7))
  t.deepEqual(seen, [7])
  t.is(warned.length, 1)
  t.is(warned[0]?.err, boom)
  t.is(warned[0]?.event, 'a')
})

test('a listener that unsubscribes while called does not make another one miss the event', (t) => {
  const e = new TypedEmitter<Events>()
  const seen: string[] = []
  const off = e.on('a', () => { seen.push('first'); off() })
  e.on('a', () => seen.push('second'))
  e.emit('a', 1)
  e.emit('a', 2)
  t.deepEqual(seen, ['first', 'second', 'second'])
})
