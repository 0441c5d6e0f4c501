/**
 * The gRPC address peers on the mesh can dial, from the address the public listener bound. A
 * wildcard listener is announced on the mesh's own host, or as "0.0.0.0:port" (= "the host you
 * reach me from") when the mesh listens on a wildcard too. Behind NAT: '' (schedulers assign by gossip).
 */
export function reachableAddress (bound: string, opts: { publicHost: string, meshAddresses: readonly string[], behindNat: boolean }): string {
  if (bound === '' || opts.behindNat) return ''
  const port = bound.slice(bound.lastIndexOf(':') + 1)
  if (!['0.0.0.0', '::', ''].includes(opts.publicHost)) return bound
  const meshHost = opts.meshAddresses
    .map((a) => /^\/ip4\/([\d.]+)\//.exec(a)?.[1])
    .find((h) => h !== undefined && h !== '0.0.0.0')
  return `${meshHost ?? '0.0.0.0'}:${port}`
}
