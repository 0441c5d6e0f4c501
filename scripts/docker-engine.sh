#!/usr/bin/env bash
# Makes sure a Docker-API engine answers before tests, the demo or the bench touch containers.
# Quick no-op when the engine is up; otherwise starts (or, as root with apt, installs) dockerd.
# Also makes sure a static busybox exists: the inframind/echo:1 image is built from it.
set -u

DEFAULT_SOCKET=/var/run/docker.sock
DOCKERD_LOG=${INFRAMIND_DOCKERD_LOG:-/var/log/inframind-dockerd.log}
# dockerd sets up containerd, networking and storage on first start; a minute covers slow disks.
START_TIMEOUT_S=${INFRAMIND_DOCKERD_TIMEOUT_S:-60}

say () { echo "docker-engine: $*" >&2; }
fail () { say "$*"; exit 1; }

is_root () { [ "$(id -u)" = 0 ]; }
have () { command -v "$1" >/dev/null 2>&1; }

# Which unix socket the engine should answer on ('' when DOCKER_HOST is not a unix socket).
socket_path () {
  local host=${DOCKER_HOST:-}
  case "$host" in
    '') echo "$DEFAULT_SOCKET" ;;
    unix://*) echo "${host#unix://}" ;;
    *) echo '' ;;
  esac
}

engine_answers () {
  local sock
  sock=$(socket_path)
  if [ -n "$sock" ] && have curl; then
    [ -S "$sock" ] || return 1
    [ "$(curl -s --max-time 2 --unix-socket "$sock" http://localhost/_ping 2>/dev/null)" = OK ]
    return
  fi
  have docker || return 1
  timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

apt_install () {
  is_root && have apt-get || return 1
  say "installing $* with apt-get"
  apt-get update -qq >&2 || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# A dynamically linked busybox would not run in the scratch echo image, so insist on the static one.
busybox_is_static () {
  [ -x /bin/busybox ] || return 1
  ! ldd /bin/busybox >/dev/null 2>&1
}

ensure_busybox () {
  busybox_is_static && return 0
  apt_install busybox-static && busybox_is_static && return 0
  fail "a static /bin/busybox is needed to build inframind/echo:1; install it: sudo apt-get install -y busybox-static"
}

# gVisor, for containers with `runtime: runsc`: when runsc is installed, the dockerd started here
# gets it too. Not when the daemon config already names runsc (that entry, maybe with runtimeArgs,
# decides), and not where this runsc is known not to start any container (below). Never required:
# without it the node refuses runsc jobs with a reason (OCI_RUNTIME_UNAVAILABLE).
DAEMON_JSON=/etc/docker/daemon.json
runsc_flags () {
  local runsc
  runsc=$(command -v runsc) || return 0
  if [ -f "$DAEMON_JSON" ] && grep -q '"runsc"' "$DAEMON_JSON"; then
    say "gVisor: $DAEMON_JSON registers runsc"
    return 0
  fi
  if runsc_netstack_broken; then
    say "gVisor: not registering $runsc: this release cannot start containers on this kernel (gVisor issue 10704);"
    say "  register it in $DAEMON_JSON with \"runtimeArgs\": [\"--network=host\"], or install a newer gVisor (docs/ARCHITECTURE.md, \"The sandbox\")"
    return 0
  fi
  say "gVisor: registering runsc ($runsc)"
  echo "--add-runtime=runsc=$runsc"
}

# gVisor releases from before mid-2024 take any network namespace that shows net.core.rmem_default for
# the host's, which kernels >= 6.11 show in every namespace, and then start no container with their own
# network stack ("cannot run with network enabled in root network namespace").
runsc_netstack_broken () {
  local built
  built=$(runsc --version 2>/dev/null | grep -o '20[0-9]\{6\}' | head -n 1)
  [ -n "$built" ] && [ "$built" -lt 20240730 ] || return 1
  have unshare && unshare -n test -e /proc/sys/net/core/rmem_default 2>/dev/null
}

start_dockerd () {
  local sock
  sock=$(socket_path)
  # Only the default socket is ours to bring up; another DOCKER_HOST belongs to someone else.
  if [ "$sock" != "$DEFAULT_SOCKET" ]; then
    fail "DOCKER_HOST=${DOCKER_HOST} does not answer; start that engine, or unset DOCKER_HOST to use $DEFAULT_SOCKET"
  fi
  if ! is_root; then
    if [ -S "$sock" ] && { [ ! -r "$sock" ] || [ ! -w "$sock" ]; }; then
      fail "no permission on $sock: add your user to its group ('sudo usermod -aG docker \$USER', then log in again) or run as root"
    fi
    if have dockerd; then
      fail "the Docker engine is not running and starting it needs root: run 'sudo bash scripts/docker-engine.sh' (or 'sudo systemctl start docker'), or point DOCKER_HOST at a running engine"
    fi
    fail "Docker is not installed: run 'sudo apt-get install -y docker.io busybox-static' (Debian/Ubuntu) or install Docker Engine, then 'sudo bash scripts/docker-engine.sh'"
  fi
  if ! have dockerd; then
    apt_install docker.io busybox-static || fail "dockerd is not installed and apt-get could not install it: install docker.io (Debian/Ubuntu) or Docker Engine, then rerun"
  fi
  have dockerd || fail "dockerd is still not on PATH after installing docker.io"
  local flags
  flags=$(runsc_flags)
  say "starting dockerd (log: $DOCKERD_LOG)"
  # setsid + nohup: the engine must outlive this script and the npm process that ran it.
  # shellcheck disable=SC2086 # $flags is empty or one word
  setsid nohup dockerd $flags >>"$DOCKERD_LOG" 2>&1 </dev/null &
  local pid=$! waited=0
  while [ "$waited" -lt $((START_TIMEOUT_S * 4)) ]; do
    if engine_answers; then
      say "dockerd is up"
      return 0
    fi
    # Gone without answering: e.g. another dockerd holds the pid file, or a bad daemon.json.
    kill -0 "$pid" 2>/dev/null || fail "dockerd exited during start-up; see the end of $DOCKERD_LOG"
    sleep 0.25
    waited=$((waited + 1))
  done
  fail "dockerd did not answer within ${START_TIMEOUT_S}s; see $DOCKERD_LOG"
}

if ! engine_answers; then
  say "no Docker engine answers on ${DOCKER_HOST:-unix://$DEFAULT_SOCKET}"
  start_dockerd
fi
ensure_busybox
exit 0
