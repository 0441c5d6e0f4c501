/** The text around the steps: what is about to happen, and how to check the installed node afterwards. */
import { existsSync } from 'node:fs'
import { loadIdentity } from '../identity/index.ts'
import { hostPath } from './layout.ts'
import type { RunResult } from './apply.ts'
import type { Plan } from './types.ts'

export function header (plan: Plan): string {
  const o = plan.options
  const where = o.root === '' ? 'this machine' : `${o.root} (a staging root: nothing outside it is touched)`
  return o.dryRun
    ? `infra install --dry-run: the steps for ${where}. Nothing is changed.\n`
    : `infra install: installing inframind-node on ${where}.\n`
}

export function footer (plan: Plan, result: RunResult): string {
  const o = plan.options
  const s = plan.summary
  if (o.dryRun) {
    return result.ok
      ? '\nNothing was changed. Run without --dry-run (as root) to do it.\n'
      : '\nNothing was changed. Fix what "would fail" says, then run again.\n'
  }
  if (!result.ok) return '\nThe install stopped at the step that failed; the steps before it are done. Fix the cause and run it again (it is safe to re-run).\n'

  const key = hostPath(o.root, s.keyFile)
  let id = ''
  try {
    if (existsSync(key)) id = loadIdentity(key).nodeId
  } catch {}
  const lines = [
    '',
    'inframind-node is installed.',
    ...(id !== '' ? [`  node id:  ${id}`] : []),
    `  config:   ${s.configFile}   (edit it, then: systemctl restart inframind-node)`,
    `  data:     ${s.dataDir}   (the identity ${s.keyFile}: back it up, never share it)`,
    `  command:  ${s.launcher}`
  ]
  if (o.root !== '') {
    lines.push('', `Everything is under ${o.root}, owned by the user that ran this. On the target machine, as root:`,
      ...(o.user !== 'root' ? [`  useradd --system --user-group --home-dir ${s.dataDir} --no-create-home --shell /usr/sbin/nologin ${o.user}`,
        `  chown -R ${o.user}:${o.user} ${s.dataDir} && chown root:${o.user} ${o.configDir} ${s.configFile}`] : []),
      '  systemctl daemon-reload && systemctl enable --now inframind-node')
  }
  const started = result.results.some((r) => r.step.kind === 'service' && r.outcome?.action === 'run')
  lines.push('', started ? 'Check it:' : 'Once it runs, check it:',
    '  systemctl status inframind-node          # running? restarts?',
    '  journalctl -u inframind-node -f          # its log (one JSON line per event)',
    '  infra status                             # node id, roles, jobs, containers (from the node itself)',
    '')
  return lines.join('\n')
}
