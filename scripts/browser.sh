#!/usr/bin/env bash
# Makes sure a headless Chromium is there for the dashboard's browser test and its screenshot
# (test/integration/dashboard.test.ts, scripts/dashboard-screenshot.ts). Quick no-op when it is;
# otherwise installs Debian's `chromium` package (as root with apt). playwright-core drives it:
# no browser is ever downloaded from anywhere else.
set -u

# The path the test and the screenshot script use; INFRAMIND_CHROMIUM overrides it for both.
CHROMIUM=${INFRAMIND_CHROMIUM:-/usr/bin/chromium}

say () { echo "browser: $*" >&2; }
is_root () { [ "$(id -u)" = 0 ]; }
have () { command -v "$1" >/dev/null 2>&1; }

runs () { "$CHROMIUM" --headless --no-sandbox --version >/dev/null 2>&1; }

if [ -x "$CHROMIUM" ] && runs; then
  exit 0
fi

if ! is_root || ! have apt-get; then
  say "no Chromium at $CHROMIUM; install it (Debian/Ubuntu: sudo apt-get install -y chromium fonts-dejavu-core), or set INFRAMIND_CHROMIUM to a Chromium binary"
  exit 1
fi

say "installing chromium with apt-get"
apt-get update -qq >&2 || { say "apt-get update failed"; exit 1; }
# DejaVu gives the screenshots readable text; Chromium itself pulls in the rest.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2 || { say "apt-get install chromium failed"; exit 1; }

if [ -x "$CHROMIUM" ] && runs; then
  say "$("$CHROMIUM" --version 2>/dev/null)"
  exit 0
fi
say "chromium was installed but $CHROMIUM does not run; set INFRAMIND_CHROMIUM to the browser's path"
exit 1
