import test from 'ava'
import { GossipEmitter } from '../../src/mesh/gossip-emitter.ts'

interface Events { a: number, b: string }

test('listeners get only their event, in order, until they unsubscribe', (t) => {
  const e = new GossipEmitter<Events>(() => t.fail('no listener threw'))
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
})

test('a listener that throws is reported and the others still run', (t) => {
  const errors: Array<[unknown, keyof Events]> = []
  const e = new GossipEmitter<Events>((err, event) => errors.push([err, event]))
  const seen: number[] = []
  const boom = new Error('boom')
  e.on('a', () => { throw boom })
  e.on('a', (n) => seen.push(n))
  t.notThrows(() => e.emit('a', 7))
  t.deepEqual(seen, [7])
  t.deepEqual(errors, [[boom, 'a']])
})

test('a listener that unsubscribes while called does not make another one miss the event', (t) => {
  const e = new GossipEmitter<Events>(() => t.fail('no listener threw'))
  const seen: string[] = []
  const off = e.on('a', () => { seen.push('first'); off() })
  e.on('a', () => seen.push('second'))
  e.emit('a', 1)
  e.emit('a', 2)
  t.deepEqual(seen, ['first', 'second', 'second'])
})
