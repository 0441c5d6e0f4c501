import test from 'ava'
import { CappedBuffer, StreamDemuxer, TailBuffer } from '../../src/runtime/index.ts'

function frame (stream: number, text: string): Buffer {
  const payload = Buffer.from(text)
  const header = Buffer.alloc(8)
  header[0] = stream
  header.writeUInt32BE(payload.length, 4)
  return Buffer.concat([header, payload])
}

function demuxAll (chunks: Buffer[]): { out: string, err: string, idle: boolean } {
  let out = ''
  let err = ''
  const demux = new StreamDemuxer((stream, payload) => {
    if (stream === 1) out += payload.toString()
    else if (stream === 2) err += payload.toString()
  })
  for (const chunk of chunks) demux.push(chunk)
  return { out, err, idle: demux.idle }
}

const wire = Buffer.concat([frame(1, 'hello '), frame(2, 'warn\n'), frame(1, ''), frame(1, 'world'), frame(2, 'done')])

test('demuxer separates stdout and stderr frames', (t) => {
  t.deepEqual(demuxAll([wire]), { out: 'hello world', err: 'warn\ndone', idle: true })
})

test('demuxer handles a split at every byte position', (t) => {
  for (let i = 0; i <= wire.length; i++) {
    t.deepEqual(demuxAll([wire.subarray(0, i), wire.subarray(i)]), { out: 'hello world', err: 'warn\ndone', idle: true }, `split at ${i}`)
  }
})

test('demuxer handles one byte at a time and reports a half-read frame as not idle', (t) => {
  const bytes = [...wire].map((b) => Buffer.from([b]))
  t.deepEqual(demuxAll(bytes), { out: 'hello world', err: 'warn\ndone', idle: true })
  t.false(demuxAll([wire.subarray(0, wire.length - 2)]).idle)
  t.false(demuxAll([wire.subarray(0, 3)]).idle)
})

test('CappedBuffer keeps up to max bytes and refuses the first byte beyond', (t) => {
  const buf = new CappedBuffer(10)
  t.true(buf.add(Buffer.from('12345')))
  t.true(buf.add(Buffer.from('67890')))
  t.is(buf.length, 10)
  t.false(buf.overflowed)
  t.false(buf.add(Buffer.from('x')))
  t.true(buf.overflowed)
  t.false(buf.add(Buffer.from('')), 'stays overflowed')
  t.is(Buffer.from(buf.bytes()).toString(), '1234567890', 'nothing past the cap is kept')
})

test('CappedBuffer copies, so later changes to the source do not leak in', (t) => {
  const buf = new CappedBuffer(10)
  const src = Buffer.from('abc')
  buf.add(src)
  src.write('zzz')
  t.is(Buffer.from(buf.bytes()).toString(), 'abc')
})

test('TailBuffer keeps the last max bytes', (t) => {
  const tail = new TailBuffer(8)
  tail.add(Buffer.from('abc'))
  t.is(tail.text(), 'abc')
  tail.add(Buffer.from('defghij'))
  t.is(tail.text(), 'cdefghij')
  tail.add(Buffer.from('0123456789'))
  t.is(tail.text(), '23456789')
})
