#!/usr/bin/env bash
# An emulated arm64 board on this machine: a Debian arm64 root run by qemu-user through
# binfmt_misc, with its own sshd on a loopback port, its own Python and ONNX Runtime
# (aarch64 wheels, installed offline). Its latencies are the emulator's, not a real board's;
# everything else (aarch64 binaries, SSH, the agent, the deploy) is real.
#
#   scripts/emulated-board.sh up       build once (cached), start sshd, write the descriptor
#   scripts/emulated-board.sh status   what is built and what is running
#   scripts/emulated-board.sh down     stop every process it started (by pid), unmount
#   scripts/emulated-board.sh purge    down, then delete the cached board
#
# Environment: EDGENAS_BOARD_DIR (cache, default /var/cache/edgenas/arm64-board),
# EDGENAS_BOARD_MIRROR (Debian mirror, default: the host's apt mirror or deb.debian.org),
# EDGENAS_DEVICES_DIR (where the descriptor goes, default ./devices).
# It never reads or writes ~/.ssh: the board's keys, known_hosts and ssh_config live in the
# cache folder, and the descriptor points ssh at that config (-F).
set -euo pipefail

NAME=arm64-emulated
STATE=${EDGENAS_BOARD_DIR:-/var/cache/edgenas/arm64-board}
ROOT=$STATE/root            # the finished board; exists only once fully provisioned
PARTIAL=$STATE/root.partial # a build in progress; never reused
DEVICES_DIR=${EDGENAS_DEVICES_DIR:-devices}
SUITE=bookworm
PACKAGES=python3,python3-venv,python3-pip,openssh-server,ca-certificates
WHEELS=(onnxruntime numpy)
PYVER=3.11                  # bookworm's python3

say() { printf 'emulated-board: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

need_root() {
  [ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mount and binfmt_misc do); run: sudo $0 $1"
}

mounted_under() {  # mount points at or below $1, deepest first
  awk -v p="$1" '$2 == p || index($2, p "/") == 1 {print $2}' /proc/self/mounts | sort -r
}

unmount_all() {
  local m
  for m in $(mounted_under "$1"); do umount "$m" 2>/dev/null || umount -l "$m"; done
  [ -z "$(mounted_under "$1")" ] || die "could not unmount everything under $1"
}

ensure_tools() {
  local missing=()
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v update-binfmts >/dev/null || missing+=(binfmt-support)
  command -v ssh >/dev/null || missing+=(openssh-client)
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    say "installing ${missing[*]} (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
      >"$STATE/apt.log" 2>&1 || die "apt-get install ${missing[*]} failed (no network to Debian's registry?): see $STATE/apt.log"
  fi
}

ensure_binfmt() {
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
      || die "binfmt_misc is not available (mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc failed): the kernel or container does not allow it, and qemu-user cannot run arm64 programs without it"
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || die "could not register qemu-aarch64 with binfmt_misc (update-binfmts --enable qemu-aarch64)"
  fi
  head -1 /proc/sys/fs/binfmt_misc/qemu-aarch64 | grep -qx enabled \
    || die "qemu-aarch64 is registered but disabled: update-binfmts --enable qemu-aarch64"
  # F (fix binary): the interpreter is opened now, so it need not exist inside the chroot
  grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || die "qemu-aarch64's binfmt entry lacks the F flag; reinstall qemu-user-static"
}

mirror() {
  if [ -n "${EDGENAS_BOARD_MIRROR:-}" ]; then echo "$EDGENAS_BOARD_MIRROR"; return; fi
  local m
  m=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null \
      | head -1 | awk '{print $2}')
  echo "${m:-http://deb.debian.org/debian}"
}

host_pip() {  # a pip on the host that can download wheels for another platform
  if [ -x .venv/bin/pip ]; then echo .venv/bin/pip; return; fi
  python3 -m pip --version >/dev/null 2>&1 && { echo "python3 -m pip"; return; }
  die "no pip on the host to download the board's wheels (python3 -m venv .venv first)"
}

build() {
  [ -e "$ROOT/.edgenas-board-complete" ] && return 0
  if [ -e "$ROOT" ]; then  # an old layout or a board whose marker was lost: not trusted
    say "$ROOT is incomplete; building anew"; unmount_all "$ROOT"; rm -rf --one-file-system "$ROOT"
  fi
  if [ -e "$PARTIAL" ]; then
    say "removing a half-built board from an interrupted run"
    unmount_all "$PARTIAL"; rm -rf --one-file-system "$PARTIAL"
  fi
  local url; url=$(mirror)
  say "building a Debian $SUITE arm64 root from $url (about 10 minutes on 2 cores; log: $STATE/build.log)"
  debootstrap --arch=arm64 --variant=minbase --include="$PACKAGES" "$SUITE" "$PARTIAL" "$url" \
    >"$STATE/build.log" 2>&1 \
    || die "debootstrap failed (no network to Debian's registry at $url?): see $STATE/build.log; nothing half-built will be reused"
  [ "$(chroot "$PARTIAL" uname -m)" = aarch64 ] || die "the root does not run as aarch64"

  # The board has no route to the package registry (its CA store lacks this machine's), as
  # an offline board: download aarch64 wheels on the host, install them inside.
  say "downloading ${WHEELS[*]} wheels for manylinux aarch64, Python $PYVER"
  mkdir -p "$PARTIAL/opt/wheels"
  # shellcheck disable=SC2046
  $(host_pip) download --quiet --only-binary=:all: --platform manylinux_2_28_aarch64 \
    --python-version "$PYVER" --implementation cp -d "$PARTIAL/opt/wheels" "${WHEELS[@]}" \
    >>"$STATE/build.log" 2>&1 || die "pip download of the aarch64 wheels failed: see $STATE/build.log"
  if ls "$PARTIAL"/opt/wheels/*x86_64* >/dev/null 2>&1; then die "a host (x86_64) wheel was downloaded for the board"; fi
  say "installing them in the board's own venv /opt/ort (under emulation: a few minutes)"
  chroot "$PARTIAL" /usr/bin/python3 -m venv /opt/ort >>"$STATE/build.log" 2>&1
  chroot "$PARTIAL" /opt/ort/bin/pip install --quiet --no-index --find-links /opt/wheels "${WHEELS[@]}" \
    >>"$STATE/build.log" 2>&1 || die "installing the wheels inside the board failed: see $STATE/build.log"
  chroot "$PARTIAL" /opt/ort/bin/python -c 'import onnxruntime, numpy' 2>>"$STATE/build.log" \
    || die "onnxruntime does not import on the board: see $STATE/build.log"
  date -u +%FT%TZ >"$PARTIAL/.edgenas-board-complete"
  mv "$PARTIAL" "$ROOT"
  say "board built: $(chroot "$ROOT" /opt/ort/bin/python -c 'import onnxruntime, numpy, platform; print(platform.machine(), "Python", platform.python_version(), "onnxruntime", onnxruntime.__version__, "numpy", numpy.__version__)')"
}

running_pid() {  # the sshd we started, if it is still that process
  local pid
  [ -f "$STATE/sshd.pid" ] || return 1
  pid=$(cat "$STATE/sshd.pid")
  [ -d "/proc/$pid" ] || return 1
  [ "$(readlink "/proc/$pid/root")" = "$ROOT" ] || return 1
  echo "$pid"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

configure() {  # keys, sshd_config, the client config; port chosen once and kept
  mkdir -p "$STATE/ssh"
  chmod 700 "$STATE/ssh"
  [ -f "$STATE/ssh/port" ] || free_port >"$STATE/ssh/port"
  local port; port=$(cat "$STATE/ssh/port")
  [ -f "$STATE/ssh/client_key" ] || ssh-keygen -q -t ed25519 -N "" -C "edgenas-board" -f "$STATE/ssh/client_key"
  [ -f "$ROOT/etc/ssh/edgenas_host_key" ] || ssh-keygen -q -t ed25519 -N "" -f "$ROOT/etc/ssh/edgenas_host_key"
  mkdir -p "$ROOT/root/.ssh" "$ROOT/run/sshd"
  chmod 700 "$ROOT/root/.ssh"
  cp "$STATE/ssh/client_key.pub" "$ROOT/root/.ssh/authorized_keys"
  cat >"$ROOT/etc/ssh/sshd_config_edgenas" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey /etc/ssh/edgenas_host_key
PidFile /run/sshd-edgenas.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp internal-sftp
EOF
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$ROOT/etc/ssh/edgenas_host_key.pub")" >"$STATE/ssh/known_hosts"
  cat >"$STATE/ssh/ssh_config" <<EOF
Host $NAME
  HostName 127.0.0.1
  Port $port
  User root
  IdentityFile $STATE/ssh/client_key
  IdentitiesOnly yes
  UserKnownHostsFile $STATE/ssh/known_hosts
  StrictHostKeyChecking yes
  ServerAliveInterval 15
EOF
}

write_descriptor() {
  mkdir -p "$DEVICES_DIR"
  cat >"$DEVICES_DIR/$NAME.toml" <<EOF
# Written by scripts/emulated-board.sh: an arm64 board EMULATED by qemu-user on this host.
# Its latencies are the emulator's (about 200x a native run), not a real board's.
name = "$NAME"
notes = "Debian $SUITE arm64 under qemu-user on this host; latencies are the emulator's, not a real board's."

[connection]
kind = "ssh"
host = "$NAME"
python = "/opt/ort/bin/python"
workdir = "/tmp/edgenas"
ssh_config = "$STATE/ssh/ssh_config"

[runtime]
name = "onnxruntime"
providers = ["CPUExecutionProvider"]
threads = 1
precision = "fp32"

[timing]
warmup = 3
repeats = 10
min_time_ms = 0.0
max_time_ms = 300.0
EOF
}

start() {
  # /proc and /dev for sshd and Python; never /sys: ORT's cpuinfo crashes qemu on the host's
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
  mountpoint -q "$ROOT/dev/pts" || mount --bind /dev/pts "$ROOT/dev/pts"
  local port; port=$(cat "$STATE/ssh/port")
  setsid chroot "$ROOT" /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config_edgenas \
    >>"$STATE/sshd.log" 2>&1 </dev/null &
  echo $! >"$STATE/sshd.pid"
  local i
  for i in $(seq 1 120); do
    if ssh -F "$STATE/ssh/ssh_config" -o BatchMode=yes -o ConnectTimeout=5 "$NAME" true 2>/dev/null; then
      return 0
    fi
    running_pid >/dev/null || die "sshd exited: $(tail -5 "$STATE/sshd.log")"
    sleep 0.5
  done
  die "sshd on 127.0.0.1:$port did not answer within 60 s: see $STATE/sshd.log"
}

cmd_up() {
  need_root up
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -n 9 || die "another $0 is running on $STATE"
  ensure_tools
  ensure_binfmt
  build
  configure
  if pid=$(running_pid); then
    say "already up (sshd pid $pid); reusing it"
  else
    start
  fi
  write_descriptor
  say "up: $(ssh -F "$STATE/ssh/ssh_config" -o BatchMode=yes "$NAME" uname -m) board, ssh -F $STATE/ssh/ssh_config $NAME; descriptor $DEVICES_DIR/$NAME.toml"
}

descendants() {  # every process below $1 (sshd forks one per connection), children first
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do descendants "$child"; echo "$child"; done
}

cmd_down() {
  need_root down
  local pid
  if pid=$(running_pid); then
    # shellcheck disable=SC2046
    kill $(descendants "$pid") "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null || true
    say "stopped sshd (pid $pid)"
  else
    say "sshd was not running"
  fi
  rm -f "$STATE/sshd.pid"
  # anything else still running inside the board (a timing the connection left behind)
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && kill -9 "${p#/proc/}" 2>/dev/null && say "killed ${p#/proc/} (left inside the board)"
  done
  [ -d "$ROOT" ] && unmount_all "$ROOT"
  say "down"
}

cmd_status() {
  if [ -e "$ROOT/.edgenas-board-complete" ]; then
    echo "built:    $ROOT (since $(cat "$ROOT/.edgenas-board-complete"))"
  elif [ -e "$PARTIAL" ]; then
    echo "built:    no (a half-built root is at $PARTIAL; 'up' will start it again)"
  else
    echo "built:    no ('up' builds it)"
  fi
  local pid
  if pid=$(running_pid); then
    echo "sshd:     running, pid $pid, 127.0.0.1:$(cat "$STATE/ssh/port")"
    echo "answers:  $(ssh -F "$STATE/ssh/ssh_config" -o BatchMode=yes -o ConnectTimeout=10 "$NAME" uname -m 2>&1)"
  else
    echo "sshd:     not running"
  fi
  [ -f "$DEVICES_DIR/$NAME.toml" ] && echo "device:   $DEVICES_DIR/$NAME.toml" || echo "device:   no descriptor in $DEVICES_DIR"
  if [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    echo "binfmt:   qemu-aarch64 $(head -1 /proc/sys/fs/binfmt_misc/qemu-aarch64)"
  else
    echo "binfmt:   qemu-aarch64 not registered"
  fi
}

cmd_purge() {
  need_root purge
  [ -d "$STATE" ] || { say "nothing to purge"; return; }
  cmd_down
  for d in "$ROOT" "$PARTIAL"; do [ -e "$d" ] && { unmount_all "$d"; rm -rf --one-file-system "$d"; }; done
  rm -rf "$STATE"
  say "purged $STATE"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  purge) cmd_purge ;;
  *) echo "usage: $0 up|status|down|purge" >&2; exit 2 ;;
esac
