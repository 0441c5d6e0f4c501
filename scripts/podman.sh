#!/usr/bin/env bash
# Runs Podman's Docker-compatible API service for the node (see docs/PODMAN.md).
#
#   bash scripts/podman.sh start    start the service on $PODMAN_SOCKET (root), wait until it answers
#   bash scripts/podman.sh load     copy the sample images (inframind/echo:1, inframind/nlp:1) from Docker
#   bash scripts/podman.sh stop     stop the service this script started
#   bash scripts/podman.sh status   say whether it answers
#   bash scripts/podman.sh clean    remove the node's containers (labelled inframind.*) and the sample images
#
# Then point the node (or the tests) at it: DOCKER_HOST=unix://$PODMAN_SOCKET, or runtime.socket.
set -u

PODMAN_SOCKET=${PODMAN_SOCKET:-/run/podman/podman.sock}
STATE_DIR=${INFRAMIND_PODMAN_DIR:-/run/inframind-podman}
PID_FILE=$STATE_DIR/service.pid
LOG_FILE=$STATE_DIR/service.log
CONF_FILE=$STATE_DIR/containers.conf
IMAGES=(inframind/echo:1 inframind/nlp:1)

say () { echo "podman: $*" >&2; }
fail () { say "$*"; exit 1; }

answers () {
  [ -S "$PODMAN_SOCKET" ] && [ "$(curl -s --max-time 2 --unix-socket "$PODMAN_SOCKET" http://d/_ping 2>/dev/null)" = OK ]
}

# Podman gives root containers nofile=1048576 and nproc=4194304. Raising a hard limit needs
# CAP_SYS_RESOURCE; without it (containers, some VMs) every container fails with "error setting
# rlimit type 7: operation not permitted". Then the defaults are capped at the service's own hard
# limits (read from /proc once it runs: podman lowers its nproc limit itself, so the shell's is no guide).
has_sys_resource () {
  local caps
  caps=$(awk '/^CapEff:/ { print $2 }' /proc/self/status)
  (( (16#$caps >> 24) & 1 ))
}

hard_limit () { # pid, "open files" | "processes"
  # "Max open files  20000  20000  files": the hard limit is the second-to-last field.
  awk -v what="$2" 'index($0, "Max " what) == 1 { print $(NF - 1) }' "/proc/$1/limits"
}

write_conf () { # nofile nproc ('' = no override)
  mkdir -p "$STATE_DIR"
  if [ -z "$1" ]; then : > "$CONF_FILE"; return; fi
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' "$1" "$1" "$2" "$2" > "$CONF_FILE"
}

launch () {
  mkdir -p "$(dirname "$PODMAN_SOCKET")"
  CONTAINERS_CONF=$CONF_FILE setsid podman system service --time=0 "unix://$PODMAN_SOCKET" >"$LOG_FILE" 2>&1 &
  echo $! > "$PID_FILE"
  for _ in $(seq 1 50); do
    answers && return 0
    sleep 0.2
  done
  fail "the service did not answer within 10 s; see $LOG_FILE"
}

start () {
  [ "$(id -u)" = 0 ] || fail "run as root (the node's sandbox needs rootful podman for cgroup limits)"
  command -v podman >/dev/null 2>&1 || fail "podman is not installed: apt-get install -y podman"
  if answers; then say "already answering on $PODMAN_SOCKET"; return 0; fi
  if has_sys_resource && [ "$(ulimit -Hn)" = unlimited -o "$(ulimit -Hn)" -ge 1048576 ] 2>/dev/null; then
    write_conf ''
    launch
  else
    write_conf "$(ulimit -Hn)" "$(ulimit -Hu)"
    launch
    local pid nofile nproc
    pid=$(cat "$PID_FILE")
    nofile=$(hard_limit "$pid" 'open files')
    nproc=$(hard_limit "$pid" 'processes')
    say "no CAP_SYS_RESOURCE: container ulimits capped at the service's limits, nofile=$nofile nproc=$nproc"
    write_conf "$nofile" "$nproc"
    stop >/dev/null 2>&1
    launch
  fi
  say "answering on unix://$PODMAN_SOCKET (pid $(cat "$PID_FILE"), log $LOG_FILE)"
}

stop () {
  [ -f "$PID_FILE" ] || { say "not started by this script"; return 0; }
  local pid
  pid=$(cat "$PID_FILE")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$PID_FILE" "$PODMAN_SOCKET"
  say "stopped"
}

load () {
  command -v docker >/dev/null 2>&1 || fail "docker CLI missing: the sample images are built into Docker first (node scripts/build-images.ts)"
  local tar
  tar=$(mktemp /tmp/inframind-podman-images.XXXXXX.tar)
  trap 'rm -f "$tar"' RETURN
  docker save -o "$tar" "${IMAGES[@]}" || fail "docker save failed: build the images with 'node scripts/build-images.ts'"
  # Same image ids under Podman (sha256 of the image config), so config.yaml's digest pins hold.
  CONTAINERS_CONF=$CONF_FILE podman load -q -i "$tar"
}

clean () {
  command -v podman >/dev/null 2>&1 || fail "podman is not installed"
  # The CLI works on the storage directly, so this also runs with the service stopped.
  local ids
  ids=$(CONTAINERS_CONF=$CONF_FILE podman ps -aq --filter label=inframind.runtime)
  # shellcheck disable=SC2086 # one id per word
  [ -z "$ids" ] || CONTAINERS_CONF=$CONF_FILE podman rm -f -i $ids >/dev/null
  CONTAINERS_CONF=$CONF_FILE podman rmi -i "${IMAGES[@]}" >/dev/null
  say "removed $(echo "$ids" | grep -c .) container(s) and the sample images"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  load) load ;;
  clean) clean ;;
  status) if answers; then say "answering on unix://$PODMAN_SOCKET"; else say "not answering on unix://$PODMAN_SOCKET"; exit 1; fi ;;
  *) echo "usage: $0 start|load|stop|status|clean" >&2; exit 2 ;;
esac
