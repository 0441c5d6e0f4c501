/**
 * Where to call a peer's gRPC, from the address its heartbeat advertises. A wildcard host
 * ("0.0.0.0:port": the peer listens everywhere and does not know its own address) means the host
 * this node's mesh connection to it comes from; '' when there is none to use.
 */
export function grpcTarget (advertised: string, connectedFrom: readonly string[]): string {
  if (!advertised.startsWith('0.0.0.0:')) return advertised
  const host = connectedFrom.map((a) => /^\/ip4\/([\d.]+)\/tcp\//.exec(a)?.[1]).find((h) => h !== undefined)
  return host === undefined ? '' : `${host}:${advertised.slice('0.0.0.0:'.length)}`
}
