/**
 * The hand-written usage of the command groups (`infra sub|records|roster help`): each subcommand with
 * what it does and its main options on one screen. Kept apart from the command modules so that help
 * loads nothing heavy; `infra <group> <command> --help` shows the generated per-command help.
 */
import { ROLES } from '../config/constants.ts'
import { DEFAULT_DRAFT_FILE, DEFAULT_MESH_KEY_FILE, DEFAULT_OPERATOR_KEY_FILE, DEFAULT_SIGNED_FILE } from '../roster/constants.ts'

export const SUB_USAGE = `usage: infra sub <command> [options]

commands:
  key --out FILE [--force]                               create an owner key (PKCS#8 ed25519 PEM, mode 0600); prints the owner id
  create --key FILE --container ID[,ID...] --input TEXT|@FILE|@- --frequency N --period S --redundancy R
         [--nonce X] [--expires-in S] [--lazy] [--deadline MS]
         [--verify none|signature|reexecute [--validators V] [--quorum Q]] [--json]
                                                         sign a subscription with the owner's key and create it: N intervals,
                                                         S seconds apart (0 = once), R distinct nodes answering each; the same
                                                         owner and --nonce again is the same subscription, never a second one;
                                                         --expires-in S: no gateway accepts the request after S seconds
                                                         (default 3600; a replay of an accepted one still answers)
  create --signed FILE [--json]                          create one signed earlier with \`sub sign\` (anyone may send it)
  sign --key FILE <the options of create> --out FILE [--force]
                                                         sign off-line and write the signed request to FILE (mode 0600):
                                                         a delegated request, prints the subscription id it names
  cancel --key FILE ID [--json]                          cancel (the owner's key only)
  get ID [--json]                                        one subscription: state, interval, its request, responses so far
  ls [--owner ID] [--state pending|active|completed|cancelled] [--json]
                                                         subscriptions the gateway's coordinators hold
  watch ID [--from N] [--key FILE] [--json]              each accepted response as it comes (from interval N, replayed;
                                                         default only new ones); with the owner's --key, the output opened

options: --gateway HOST:PORT[,HOST:PORT...] (tried in order, failing over; default --addr, INFRAMIND_ADDR
         (a comma list too), or the node in config.yaml), --config FILE, --timeout MS (per call)
`

export const RECORDS_USAGE = `usage: infra records <command> [options]

commands:
  receipt JOB_ID|HASH [--json] [--out FILE]              a job's newest receipt (or the receipt record with that sha256, 64 hex)
                                                         as \`infra job --receipt\` prints it: check it with \`infra verify\`
  certificate JOB_ID|HASH [--json] [--out FILE]          the same for a verified job's certificate
  ls [--job ID] [--node ID] [--since T] [--until T] [--kind K] [--page-size N] [--page-token T] [--json]
                                                         records in the order the archive stored them; T is an ISO time
                                                         or unix ms; K: receipt, attestation, certificate, dispute, output,
                                                         subscription-event; at most 1000 a page (default 100)

options: --gateway HOST:PORT[,...] archive nodes' public addresses, tried in order (default --addr,
         INFRAMIND_ADDR or the node in config.yaml), --config FILE, --timeout MS (per call)
`

export const ROSTER_USAGE = `usage: infra roster <command> [options]

  init [--draft F] [--operator-key FILE] [--mesh-key FILE] [--mesh NAME]
        create the operator key and the mesh key (each only if missing) and an empty draft
  add NODE_ID --roles ROLE[,ROLE...] [--name NAME] [--draft F]
        list a node in the draft (a listed node gets the new roles); roles: ${ROLES.join(', ')}
  remove NODE_ID [--draft F]
  sign [--operator-key FILE] [--draft F] [--out F] [--expires 30d|12h|90m|0]
        sign the draft as its next version (written back to the draft); --expires 0 = never (default)
  show [FILE] [--operators ID,...] [--json]
        a draft, or a signed roster with its signature checked (and its signer, with --operators)
  show --node [--control ADDR] [--config F] [--json]
        the roster a running node holds
  push FILE [--control ADDR] [--config F]
        apply a signed roster on a node; the mesh passes it on to every node

defaults: --draft ${DEFAULT_DRAFT_FILE}, --out ${DEFAULT_SIGNED_FILE}, --operator-key ${DEFAULT_OPERATOR_KEY_FILE}, --mesh-key ${DEFAULT_MESH_KEY_FILE}
exit status: 0 done, 1 failed or refused, 2 usage error
`

/** After the generated list of commands in `infra --help`. */
export const MAIN_FOOTER = `
start and devnet stop cleanly on Ctrl-C or SIGTERM (exit 0); a second one forces it (exit 130/143).
exit status: 0 done, 1 failed (or a job failed, or a receipt is invalid), 2 usage error.

client options: --addr HOST:PORT (public gRPC, default INFRAMIND_ADDR, config.yaml or 127.0.0.1:9000),
                --control HOST:PORT|unix:PATH (default INFRAMIND_CONTROL, config.yaml or 127.0.0.1:9001),
                --config FILE, --timeout MS
every listing command takes --json; \`infra <command> --help\` shows a command's options;
shell completion: eval "$(infra completion bash)" (or zsh)
`
