#!/usr/bin/env bash
# Install the Debian packages the real node of `pythonapp dev up --real-node` runs on, when any
# is missing:
#   containerd runc containernetworking-plugins   the container runtime and the CNI bridge
#   docker-registry skopeo umoci mmdebstrap       the loopback registry and images without Docker
#   socat                                         the API server's port on the bridge, for pods
# (~50 MB download, ~200 MB on disk, ~15 s on this machine's mirror).
#
#   scripts/realnode-packages.sh           install what is missing (root only)
#   scripts/realnode-packages.sh --check   exit 0 when all are installed, else 1 naming them
#
# One line per step on stderr ("[realnode-packages   4s] 2/2 apt-get install ..."); apt's own
# output goes to the log file the first step names, and its end is shown if a step fails.
# Installing needs root (apt-get); a user who is not gets a one-line refusal and exit 2, and
# nothing is changed. Idempotent: with everything installed it says so and does nothing.
# apt waits for the dpkg lock (another installer may hold it). Package scripts are told not to
# start services (the real node runs containerd itself, with a config, root and socket of its own).
set -euo pipefail

PACKAGES=(containerd runc containernetworking-plugins docker-registry skopeo umoci mmdebstrap socat)
CACHE="${PYTHONAPP_CACHE:-$HOME/.cache/pythonapp-operator}"
LOG="$CACHE/build/realnode-packages.log"
START=$SECONDS

duration() { if [ "$1" -lt 60 ]; then printf '%ss' "$1"; else printf '%sm%02ds' $(($1 / 60)) $(($1 % 60)); fi; }
say() { printf '[realnode-packages %6s] %s\n' "$(duration $((SECONDS - START)))" "$*" >&2; }
fail() {
  say "FAILED: $*; the end of $LOG:"
  tail -n 25 "$LOG" | sed 's/^/    /' >&2
  exit 1
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done

if [ "${1:-}" = --check ]; then
  if [ "${#missing[@]}" -eq 0 ]; then say "installed: ${PACKAGES[*]}"; exit 0; fi
  say "missing: ${missing[*]}"
  exit 1
fi
if [ "${#missing[@]}" -eq 0 ]; then
  say "already installed: ${PACKAGES[*]}"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  say "refused: installing ${missing[*]} needs root (apt-get); run this script as root, or install them yourself"
  exit 2
fi
command -v apt-get >/dev/null || { say "refused: no apt-get (the real node needs Debian or Ubuntu packages: ${missing[*]})"; exit 2; }

mkdir -p "$(dirname "$LOG")"
: >"$LOG"
export DEBIAN_FRONTEND=noninteractive
say "missing: ${missing[*]}; about 15 s; apt's log: $LOG"
say "1/2 apt-get update (then install)"
apt-get -o DPkg::Lock::Timeout=300 update >>"$LOG" 2>&1 || fail "apt-get update"
say "2/2 apt-get install ${missing[*]}"
# policy-rc.d exit 101: no package may start a service while installing (containerd's would
# claim /run/containerd/containerd.sock and /var/lib/containerd).
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
fi
rc=0
apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1 || rc=$?
[ "$own_policy" = 1 ] && rm -f "$policy"
[ "$rc" -eq 0 ] || fail "apt-get install ${missing[*]}"
say "done: ${PACKAGES[*]} installed"
