/** `infra submit` and `infra run`: one node directly, or several gateways through the failover client. */
import { str, type ParsedArgs } from './args.ts'
import { wantsFailover } from './endpoints.ts'
import type { CliIo } from './io.ts'

export async function submit (args: ParsedArgs, io: CliIo, opts: { failover?: boolean } = {}): Promise<number> {
  // The failover client is loaded only then, so the one-node path stays as light as it was.
  if (opts.failover === true || wantsFailover({ gateway: str(args, 'gateway'), addr: str(args, 'addr') }, io.env)) {
    return await (await import('./gateways.ts')).runSubmitFailover(args, io)
  }
  return await (await import('./client-commands.ts')).runSubmit(args, io)
}
