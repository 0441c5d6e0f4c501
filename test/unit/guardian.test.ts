import test from 'ava'
import { peerIp } from '../../src/api/node-service.ts'
import { containerConfig } from '../../src/config/index.ts'
import { cidrContains, guardian, parseCidr, GuardianRejectedError, type GuardianReason } from '../../src/guardian/index.ts'
import type { ContainerConfig } from '../../src/config/types.ts'
import type { JobOrigin } from '../../src/runtime/types.ts'

const PEER_A = '12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const PEER_B = '12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB'

function c (id: string, extra: Partial<ContainerConfig> = {}): ContainerConfig {
  return containerConfig({ id, image: 'inframind/echo:1', digest: 'sha256:' + 'ab'.repeat(32), ...extra })
}

const CONTAINERS = [
  c('open'),
  c('inner', { external: false }),
  c('lan', { allowedIps: ['10.0.0.0/8', '192.168.1.0/24'] }),
  c('loop', { allowedIps: ['127.0.0.0/8', '::1/128'] }),
  c('v6', { allowedIps: ['2001:db8::/32'] }),
  c('peers', { allowedPeers: [PEER_A] }),
  c('delegated', { allowedDelegates: [PEER_B] }),
  c('prover', { generatesProofs: true }),
  c('strict', { external: false, allowedIps: ['10.0.0.0/8'], allowedPeers: [PEER_A], allowedDelegates: [PEER_B] })
]

const g = guardian({ containers: CONTAINERS })
const ip = (address: string): JobOrigin => ({ ip: address, peerId: '', delegate: '' })
const NOBODY: JobOrigin = ip('')

interface Case {
  name: string
  containers: string[]
  origin?: JobOrigin
  proof?: boolean
  /** origin.delegate signed the job's subscription. */
  verified?: boolean
  /** undefined = allowed */
  reason?: GuardianReason
  code?: string
  containerId?: string
}

const CASES: Case[] = [
  // Rule 1: some container must be named.
  { name: 'no containers', containers: [], reason: 'NO_CONTAINERS', code: 'INVALID_ARGUMENT', containerId: '' },
  // Rule 2: every container must be served.
  { name: 'unknown container', containers: ['nope'], reason: 'UNKNOWN_CONTAINER', code: 'NOT_FOUND', containerId: 'nope' },
  { name: 'unknown container later in the chain', containers: ['open', 'nope'], reason: 'UNKNOWN_CONTAINER', code: 'NOT_FOUND', containerId: 'nope' },
  // Rule 3: the first container must be external.
  { name: 'internal first', containers: ['inner'], reason: 'NOT_EXTERNAL', code: 'PERMISSION_DENIED', containerId: 'inner' },
  { name: 'internal second', containers: ['open', 'inner'] },
  { name: 'internal twice in a row after an external one', containers: ['open', 'inner', 'inner'] },
  // Rule 4: the origin IP must be in allowed_ips of every container.
  { name: 'empty allow-list allows any IP', containers: ['open'], origin: ip('203.0.113.9') },
  { name: 'empty allow-list allows an unknown IP', containers: ['open'], origin: NOBODY },
  { name: 'IPv4 inside a /8', containers: ['lan'], origin: ip('10.255.255.255') },
  { name: 'IPv4 at the start of a /24', containers: ['lan'], origin: ip('192.168.1.0') },
  { name: 'IPv4 at the end of a /24', containers: ['lan'], origin: ip('192.168.1.255') },
  { name: 'IPv4 just past a /24', containers: ['lan'], origin: ip('192.168.2.0'), reason: 'IP_NOT_ALLOWED', code: 'PERMISSION_DENIED', containerId: 'lan' },
  { name: 'IPv4 just before a /8', containers: ['lan'], origin: ip('9.255.255.255'), reason: 'IP_NOT_ALLOWED', containerId: 'lan' },
  { name: 'IPv4-mapped IPv6 inside an IPv4 range', containers: ['lan'], origin: ip('::ffff:10.1.2.3') },
  { name: 'IPv4-mapped IPv6 in hex form', containers: ['lan'], origin: ip('::ffff:a01:203') },
  { name: 'IPv4-mapped IPv6 outside the range', containers: ['lan'], origin: ip('::ffff:11.1.2.3'), reason: 'IP_NOT_ALLOWED' },
  { name: 'IPv6 loopback against ::1/128', containers: ['loop'], origin: ip('::1') },
  { name: 'IPv4 loopback against 127/8', containers: ['loop'], origin: ip('127.0.0.1') },
  { name: 'IPv6 inside 2001:db8::/32', containers: ['v6'], origin: ip('2001:db8:ffff::1') },
  { name: 'IPv6 outside 2001:db8::/32', containers: ['v6'], origin: ip('2001:db9::1'), reason: 'IP_NOT_ALLOWED', containerId: 'v6' },
  { name: 'IPv4 never matches an IPv6 range', containers: ['v6'], origin: ip('10.0.0.1'), reason: 'IP_NOT_ALLOWED' },
  { name: 'an unknown IP is refused by a non-empty list', containers: ['lan'], origin: NOBODY, reason: 'IP_NOT_ALLOWED' },
  { name: 'garbage IP is refused by a non-empty list', containers: ['lan'], origin: ip('10.0.0.1.5'), reason: 'IP_NOT_ALLOWED' },
  { name: 'every container of the chain is checked', containers: ['open', 'lan'], origin: ip('127.0.0.1'), reason: 'IP_NOT_ALLOWED', containerId: 'lan' },
  { name: 'an IP allowed by one but not the other', containers: ['lan', 'loop'], origin: ip('10.0.0.1'), reason: 'IP_NOT_ALLOWED', containerId: 'loop' },
  { name: 'a mesh job without an IP skips the IP rule', containers: ['lan'], origin: { ip: '', peerId: PEER_A, delegate: '' } },
  // Rule 5: mesh jobs need a listed peer.
  { name: 'listed peer', containers: ['peers'], origin: { ip: '', peerId: PEER_A, delegate: '' } },
  { name: 'unlisted peer', containers: ['peers'], origin: { ip: '', peerId: PEER_B, delegate: '' }, reason: 'PEER_NOT_ALLOWED', code: 'PERMISSION_DENIED', containerId: 'peers' },
  { name: 'not from the mesh: peer rule skipped', containers: ['peers'], origin: ip('203.0.113.1') },
  { name: 'peer checked on later steps', containers: ['open', 'peers'], origin: { ip: '', peerId: PEER_B, delegate: '' }, reason: 'PEER_NOT_ALLOWED', containerId: 'peers' },
  // Rule 6: delegated work needs a listed delegate.
  { name: 'listed delegate, proven (signed its subscription)', containers: ['delegated'], origin: { ip: '1.2.3.4', peerId: '', delegate: PEER_B }, verified: true },
  { name: 'listed delegate only named in the request', containers: ['delegated'], origin: { ip: '1.2.3.4', peerId: '', delegate: PEER_B }, reason: 'DELEGATE_NOT_ALLOWED', containerId: 'delegated' },
  { name: 'a named delegate on a container without allowed_delegates', containers: ['open'], origin: { ip: '1.2.3.4', peerId: '', delegate: PEER_B } },
  { name: 'unlisted delegate', containers: ['delegated'], origin: { ip: '1.2.3.4', peerId: '', delegate: PEER_A }, verified: true, reason: 'DELEGATE_NOT_ALLOWED', code: 'PERMISSION_DENIED', containerId: 'delegated' },
  { name: 'not delegated: delegate rule skipped', containers: ['delegated'], origin: ip('1.2.3.4') },
  // Rule 7: a proof needs a proving last container.
  { name: 'proof from a proving last container', containers: ['open', 'prover'], proof: true },
  { name: 'proof with a non-proving last container', containers: ['prover', 'open'], proof: true, reason: 'PROOF_UNSUPPORTED', code: 'FAILED_PRECONDITION', containerId: 'open' },
  { name: 'no proof asked: rule skipped', containers: ['open'], proof: false },
  // Order: the first failing rule is the one reported.
  { name: 'unknown beats internal', containers: ['inner', 'nope'], reason: 'UNKNOWN_CONTAINER' },
  { name: 'internal beats IP', containers: ['strict'], origin: ip('8.8.8.8'), reason: 'NOT_EXTERNAL' },
  { name: 'IP beats peer', containers: ['open', 'strict'], origin: { ip: '8.8.8.8', peerId: PEER_B, delegate: PEER_A }, reason: 'IP_NOT_ALLOWED', containerId: 'strict' },
  { name: 'peer beats delegate', containers: ['open', 'strict'], origin: { ip: '10.0.0.1', peerId: PEER_B, delegate: PEER_A }, reason: 'PEER_NOT_ALLOWED' },
  { name: 'delegate beats proof', containers: ['open', 'strict'], origin: { ip: '10.0.0.1', peerId: PEER_A, delegate: PEER_A }, proof: true, reason: 'DELEGATE_NOT_ALLOWED' },
  { name: 'all rules pass, then proof', containers: ['open', 'strict'], origin: { ip: '10.0.0.1', peerId: PEER_A, delegate: PEER_B }, verified: true, proof: true, reason: 'PROOF_UNSUPPORTED', containerId: 'strict' },
  { name: 'everything allowed', containers: ['open', 'strict', 'prover'], origin: { ip: '10.0.0.1', peerId: PEER_A, delegate: PEER_B }, verified: true, proof: true }
]

for (const k of CASES) {
  test(`guardian: ${k.name}`, (t) => {
    const origin = k.origin ?? ip('127.0.0.1')
    const run = (): void => { g.check({ containers: k.containers, origin, requiresProof: k.proof ?? false, delegateVerified: k.verified === true }) }
    if (k.reason === undefined) {
      t.notThrows(run)
      return
    }
    const err = t.throws(run, { instanceOf: GuardianRejectedError, name: 'GuardianRejectedError' })
    t.is(err?.reason, k.reason)
    if (k.code !== undefined) t.is(String(err?.code), k.code)
    if (k.containerId !== undefined) t.is(err?.containerId, k.containerId)
    t.deepEqual(err?.origin, origin)
    // The message names the rule and the container, so a client knows what to fix.
    t.true(err?.message.includes(k.reason))
    if (err !== undefined && err.containerId !== '') t.true(err.message.includes(`"${err.containerId}"`))
  })
}

test('guardian: codes are stable per reason', (t) => {
  const seen = new Map<string, string>()
  for (const k of CASES) {
    if (k.reason === undefined) continue
    try {
      g.check({ containers: k.containers, origin: k.origin ?? ip('127.0.0.1'), requiresProof: k.proof ?? false, delegateVerified: k.verified === true })
    } catch (err) {
      const e = err as GuardianRejectedError
      const before = seen.get(e.reason)
      if (before !== undefined) t.is(String(e.code), before, e.reason)
      seen.set(e.reason, e.code)
    }
  }
  t.is(seen.size, 7)
})

test('guardian: a node with no containers refuses everything as unknown', (t) => {
  const empty = guardian({ containers: [] })
  t.like(t.throws(() => { empty.check({ containers: ['x'], origin: NOBODY, requiresProof: false }) }), { reason: 'UNKNOWN_CONTAINER' })
})

test('guardian: an unparsable allowed_ips entry allows nobody instead of everybody', (t) => {
  const bad = guardian({ containers: [c('bad', { allowedIps: ['not-a-cidr'] })] })
  t.like(t.throws(() => { bad.check({ containers: ['bad'], origin: ip('1.2.3.4'), requiresProof: false }) }), { reason: 'IP_NOT_ALLOWED' })
})

test('cidr: parsing edges', (t) => {
  t.like(parseCidr('10.0.0.0/8'), { family: 4, prefix: 8 })
  t.like(parseCidr(' 10.1.2.3 '), { family: 4, prefix: 32 })
  t.like(parseCidr('::/0'), { family: 6, prefix: 0 })
  t.like(parseCidr('2001:db8::/32'), { family: 6, prefix: 32 })
  t.like(parseCidr('::ffff:10.0.0.0/104'), { family: 6, prefix: 104 })
  for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/-1', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0/8', 'host/8', '', '10.0.0.0/1e1', '10.0.0.0/ 8']) {
    t.is(parseCidr(bad), undefined, bad)
  }
})

test('cidr: containment edges', (t) => {
  const all4 = parseCidr('0.0.0.0/0')!
  const all6 = parseCidr('::/0')!
  t.true(cidrContains(all4, '255.255.255.255'))
  t.true(cidrContains(all4, '::ffff:1.2.3.4'))
  t.false(cidrContains(all4, '2001:db8::1'))
  t.true(cidrContains(all6, '2001:db8::1'))
  // An IPv4 client is also ::ffff:a.b.c.d, so it falls in ::/0 and in a mapped range.
  t.true(cidrContains(all6, '1.2.3.4'))
  t.true(cidrContains(parseCidr('::ffff:10.0.0.0/104')!, '10.20.30.40'))
  t.false(cidrContains(parseCidr('::ffff:10.0.0.0/104')!, '11.0.0.0'))
  const host = parseCidr('10.0.0.5')!
  t.true(cidrContains(host, '10.0.0.5'))
  t.false(cidrContains(host, '10.0.0.4'))
  t.false(cidrContains(host, '10.0.0.6'))
  // A non-zero host part in the range is masked away.
  t.true(cidrContains(parseCidr('10.9.9.9/8')!, '10.0.0.0'))
  t.false(cidrContains(parseCidr('10.0.0.0/8')!, '::ffff:999.0.0.1'))
  t.false(cidrContains(parseCidr('10.0.0.0/8')!, ''))
  t.false(cidrContains(parseCidr('10.0.0.0/8')!, 'localhost'))
  t.true(cidrContains(parseCidr('fe80::/10')!, 'fe80::1%eth0'))
})

test('peerIp: every form grpc-js and gRPC core use', (t) => {
  const cases: Array<[string, string]> = [
    ['127.0.0.1:54321', '127.0.0.1'],
    ['::1:54321', '::1'],
    ['::1:8080', '::1'],
    ['::ffff:127.0.0.1:40000', '::ffff:127.0.0.1'],
    ['[::1]:54321', '::1'],
    ['ipv4:10.1.2.3:50051', '10.1.2.3'],
    ['ipv6:[2001:db8::1]:443', '2001:db8::1'],
    ['ipv6:[::ffff:10.0.0.1]:1', '::ffff:10.0.0.1'],
    ['10.0.0.1', '10.0.0.1'],
    ['unix:/run/infra.sock', ''],
    ['unix:', ''],
    ['unknown', ''],
    ['', ''],
    ['[not-an-ip]:80', ''],
    ['host.example:80', '']
  ]
  for (const [peer, expected] of cases) t.is(peerIp(peer), expected, peer)
})
