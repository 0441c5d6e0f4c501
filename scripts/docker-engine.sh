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
  say "starting dockerd (log: $DOCKERD_LOG)"
  # setsid + nohup: the engine must outlive this script and the npm process that ran it.
  setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
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
