import { isIP } from 'node:net'

/** An address range: family 4 or 6, network bits as a bigint, prefix length. */
export interface Cidr {
  family: 4 | 6
  network: bigint
  prefix: number
  text: string
}

function toBigInt (address: string, family: 4 | 6): bigint {
  if (family === 4) return address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n)
  // Expand "::" then read eight 16-bit groups; an embedded IPv4 tail becomes two groups.
  let text = address
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (v4 !== null) {
    const n = toBigInt(v4[1], 4)
    text = text.slice(0, -v4[1].length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`
  }
  const [head, tail] = text.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined ? [] : (tail === '' ? [] : tail.split(':'))
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n)
}

/** Parses "10.0.0.0/8", "::1/128" or a bare address (a /32 or /128). Undefined when invalid. */
export function parseCidr (text: string): Cidr | undefined {
  const [addr, bits, extra] = text.trim().split('/')
  if (extra !== undefined) return undefined
  const family = isIP(addr)
  if (family !== 4 && family !== 6) return undefined
  const max = family === 4 ? 32 : 128
  const prefix = bits === undefined ? max : Number(bits)
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) return undefined
  const value = toBigInt(addr, family)
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(max - prefix)
  return { family, network: value & mask, prefix, text: text.trim() }
}

/** Whether `address` (IPv4, IPv6, or IPv4-mapped IPv6) is inside `cidr`. */
export function cidrContains (cidr: Cidr, address: string): boolean {
  let addr = address
  let family = isIP(addr)
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr)
  if (mapped !== null && cidr.family === 4) { addr = mapped[1]; family = 4 }
  if (family !== cidr.family) return false
  const max = family === 4 ? 32 : 128
  const mask = cidr.prefix === 0 ? 0n : ((1n << BigInt(cidr.prefix)) - 1n) << BigInt(max - cidr.prefix)
  return (toBigInt(addr, family) & mask) === cidr.network
}
