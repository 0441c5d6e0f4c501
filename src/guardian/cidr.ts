import { isIP } from 'node:net'

/** An address range: family 4 or 6, network bits as a bigint, prefix length. */
export interface Cidr {
  family: 4 | 6
  network: bigint
  prefix: number
  text: string
}

/** The ::ffff:0:0/96 prefix: an IPv6 socket reports IPv4 clients inside it. */
const V4_MAPPED_PREFIX = 0xffffn << 32n
const V4_MASK = 0xffffffffn

function toBigInt (address: string, family: 4 | 6): bigint {
  if (family === 4) return address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n)
  // A zone id (fe80::1%eth0) names an interface, not address bits.
  let text = address.split('%')[0] ?? address
  // Expand "::" then read eight 16-bit groups; an embedded IPv4 tail becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (v4?.[1] !== undefined) {
    const n = toBigInt(v4[1], 4)
    text = text.slice(0, -v4[1].length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined ? [] : (tail === '' ? [] : tail.split(':'))
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t]
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n)
}

function maskOf (prefix: number, bits: number): bigint {
  return prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix)
}

/** Parses "10.0.0.0/8", "::1/128" or a bare address (a /32 or /128). Undefined when invalid. */
export function parseCidr (text: string): Cidr | undefined {
  const [addr = '', bits, extra] = text.trim().split('/')
  if (extra !== undefined) return undefined
  const family = isIP(addr)
  if (family !== 4 && family !== 6) return undefined
  const max = family === 4 ? 32 : 128
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return undefined
  const prefix = bits === undefined ? max : Number(bits)
  if (prefix > max) return undefined
  return { family, network: toBigInt(addr, family) & maskOf(prefix, max), prefix, text: text.trim() }
}

/**
 * Whether `address` is inside `cidr`. IPv4 and its IPv4-mapped IPv6 form (::ffff:a.b.c.d, dotted or
 * hex) are the same client, so each matches ranges written in either family. Not an IP: false.
 */
export function cidrContains (cidr: Cidr, address: string): boolean {
  const family = isIP(address)
  if (family !== 4 && family !== 6) return false
  let value = toBigInt(address, family)
  let as: 4 | 6 = family
  if (family === 6 && cidr.family === 4 && (value & ~V4_MASK) === V4_MAPPED_PREFIX) {
    value &= V4_MASK
    as = 4
  } else if (family === 4 && cidr.family === 6) {
    value |= V4_MAPPED_PREFIX
    as = 6
  }
  if (as !== cidr.family) return false
  return (value & maskOf(cidr.prefix, as === 4 ? 32 : 128)) === cidr.network
}
