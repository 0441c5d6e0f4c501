import test from 'ava'
import { ConfigError, parseConfig } from '../../src/config/index.ts'
import { fastMessageId } from '../../src/mesh/libp2p.ts'
import { grpcTarget } from '../../src/mesh/index.ts'

test('mesh.assign_via defaults to grpc, takes gossip, and names the key when wrong', (t) => {
  t.is(parseConfig('', '').mesh.assignVia, 'grpc')
  t.is(parseConfig('mesh:\n  assign_via: gossip\n', '').mesh.assignVia, 'gossip')
  const err = t.throws(() => parseConfig('mesh:\n  assign_via: pigeon\n', 'c.yaml'), { instanceOf: ConfigError }) as ConfigError
  t.deepEqual(err.errors.map((e) => [e.code, e.key]), [['INVALID_VALUE', 'mesh.assign_via']])
  t.regex(err.message, /one of grpc, gossip/)
})

test('a worker listening on every interface is called at the host its mesh connection comes from', (t) => {
  t.is(grpcTarget('10.0.0.7:9000', ['/ip4/192.168.1.5/tcp/4001/p2p/x']), '10.0.0.7:9000', 'a named host is used as is')
  t.is(grpcTarget('0.0.0.0:9000', ['/ip6/::1/tcp/4001', '/ip4/192.168.1.5/tcp/4001/p2p/x']), '192.168.1.5:9000')
  t.is(grpcTarget('0.0.0.0:9000', ['/ip6/::1/tcp/4001']), '', 'no IPv4 connection: no gRPC target (gossip instead)')
  t.is(grpcTarget('', ['/ip4/192.168.1.5/tcp/4001']), '', 'a worker that names no address is not called')
})

test('the fast message id is the author and sequence number, so copies of one message share it', (t) => {
  const from = new Uint8Array([0, 36, 8, 1, 18, 32, 7, 7])
  const a = fastMessageId({ from, seqno: new Uint8Array([1, 2, 3]) })
  t.is(fastMessageId({ from: from.slice(), seqno: new Uint8Array([1, 2, 3]) }), a)
  t.not(fastMessageId({ from, seqno: new Uint8Array([1, 2, 4]) }), a)
  t.not(fastMessageId({ from: new Uint8Array([0, 36, 8, 1, 18, 32, 7, 8]), seqno: new Uint8Array([1, 2, 3]) }), a)
  // The separator keeps author/seqno boundaries apart.
  t.not(fastMessageId({ from: new Uint8Array([1, 2]), seqno: new Uint8Array([3]) }), fastMessageId({ from: new Uint8Array([1]), seqno: new Uint8Array([2, 3]) }))
})
