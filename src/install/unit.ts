/**
 * The systemd unit of an installed node: the one source of its text (packaging/inframind-node.service
 * is this rendered with the default layout, and a unit test keeps the two equal).
 *
 * Hardening follows one rule: take away everything the node does not use, keep what Docker access
 * and the mesh need. Left out on purpose (docs/INSTALL.md says why): PrivateUsers (a user namespace
 * maps the docker group away, so the socket is unreachable), PrivateNetwork/IPAddressDeny (the mesh
 * and gRPC listen on the network), MemoryDenyWriteExecute (V8's JIT writes code at run time),
 * ProcSubset=pid (os.cpus() reads /proc/cpuinfo and /proc/stat for the node's capabilities).
 */
import { UNIT_NAME } from './constants.ts'

export interface UnitSpec {
  user: string
  /** Supplementary groups of the service (the engine socket's group); [] = none. */
  groups: string[]
  /** argv of the node: the Node binary first (absolute, as systemd requires). */
  execStart: string[]
  configFile: string
  dataDir: string
  /** Folders the service may write besides dataDir (e.g. a control socket's folder). */
  writable: string[]
  /** Where docs/INSTALL.md is, for `systemctl help`. */
  docs: string
  /** Keep NVIDIA devices visible (nvidia-smi, GPU capability); otherwise the service gets a private /dev. */
  gpu: boolean
}

/** systemd's quoting for an ExecStart word: plain when safe, else double-quoted with \ and " escaped. */
export function quoteWord (word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word
  return `"${word.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '$$$$').replace(/%/g, '%%')}"`
}

export function renderUnit (spec: UnitSpec): string {
  const group = spec.user === 'root' ? 'root' : spec.user
  const writable = [spec.dataDir, ...spec.writable.filter((p) => p !== spec.dataDir)]
  const lines = [
    `# ${UNIT_NAME}: written by \`infra install\` (src/install/unit.ts); a re-install rewrites it.`,
    '# Local changes belong in a drop-in, which a re-install keeps: systemctl edit inframind-node',
    '',
    '[Unit]',
    'Description=inframind edge compute node',
    `Documentation=file:${spec.docs}`,
    // The engine may be another service (docker.service) or a socket the node is pointed at; Wants
    // starts Docker's unit when there is one and is harmless when there is not.
    'Wants=network-online.target docker.service',
    'After=network-online.target docker.service',
    // Five failed starts in five minutes: stop trying and let the operator read the journal.
    'StartLimitIntervalSec=300',
    'StartLimitBurst=5',
    '',
    '[Service]',
    'Type=simple',
    `User=${spec.user}`,
    `Group=${group}`,
    ...(spec.groups.length > 0 ? [`SupplementaryGroups=${spec.groups.join(' ')}`] : []),
    `WorkingDirectory=${spec.dataDir}`,
    `Environment=${quoteWord(`INFRAMIND_CONFIG=${spec.configFile}`)}`,
    `ExecStart=${spec.execStart.map(quoteWord).join(' ')}`,
    'Restart=on-failure',
    'RestartSec=5s',
    // Exit 2 is a bad config or usage: restarting cannot fix it.
    'RestartPreventExitStatus=2',
    // SIGTERM to the node only; it stops its service containers (up to a minute), then anything left is killed.
    'KillMode=mixed',
    'TimeoutStopSec=60s',
    // Mesh connections, LevelDB files and gRPC streams each hold a descriptor.
    'LimitNOFILE=65536',
    '',
    '# Sandbox: the node writes only its data folder and reaches the engine through its socket.',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    `ReadWritePaths=${writable.map(quoteWord).join(' ')}`,
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateMounts=yes',
    ...(spec.gpu ? ['PrivateDevices=no'] : ['PrivateDevices=yes']),
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'ProtectProc=invisible',
    'RestrictNamespaces=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'RemoveIPC=yes',
    'UMask=0077',
    'CapabilityBoundingSet=',
    'AmbientCapabilities=',
    // Netlink: os.networkInterfaces() (libp2p expands 0.0.0.0 into addresses with it).
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
    'SystemCallArchitectures=native',
    'SystemCallFilter=@system-service',
    'SystemCallFilter=~@privileged @resources',
    // A refused call fails with EPERM (libuv and V8 fall back) instead of killing the node.
    'SystemCallErrorNumber=EPERM',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    ''
  ]
  return lines.join('\n')
}
