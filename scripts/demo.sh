#!/usr/bin/env bash
# make demo: fresh machine -> local cluster, CRD installed, operator running, examples Ready.
#   scripts/demo.sh        bring it all up and show it
#   scripts/demo.sh down   stop the operator and the cluster
# The demo runs on the user's dev cluster (`pythonapp dev kubeconfig`, ~/.cache/pythonapp-operator/dev
# unless PYTHONAPP_DEV_STATE says otherwise); `make test` and `make bench` use clusters of their own,
# so the three work in any order and the demo keeps running through them.
#
# One line per step ("[demo  1m05s] 3/6 local cluster ..."); what the tools print goes to a log
# file named on the first lines, and its end is shown if a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
CACHE="${PYTHONAPP_CACHE:-$HOME/.cache/pythonapp-operator}"
STATE="$CACHE/demo"
LOG="$STATE/demo.log"
STEPS=6
mkdir -p "$STATE"

if [ "${1:-}" = down ]; then
  if [ -f "$STATE/operator.pid" ] && kill -0 "$(cat "$STATE/operator.pid")" 2>/dev/null; then
    kill -TERM "$(cat "$STATE/operator.pid")" && echo "operator stopped"
  fi
  rm -f "$STATE/operator.pid"
  # the cluster the demo recorded (the user's dev cluster), whatever PYTHONAPP_DEV_STATE says now
  if [ -f "$STATE/cluster" ]; then
    PYTHONAPP_DEV_STATE="$(cat "$STATE/cluster")" "$BIN/pythonapp" dev down
    rm -f "$STATE/cluster"
  else
    "$BIN/pythonapp" dev down
  fi
  exit 0
fi

START=$SECONDS
n=0
# duration SECONDS: 42s, 3m05s
duration() { if [ "$1" -lt 60 ]; then printf '%ss' "$1"; else printf '%sm%02ds' $(($1 / 60)) $(($1 % 60)); fi; }
say() { printf '[demo %6s] %s\n' "$(duration $((SECONDS - START)))" "$*"; }
step() { n=$((n + 1)); say "$n/$STEPS $*"; }
fail() {
  say "FAILED: $*; the end of $LOG:"
  tail -n 25 "$LOG" | sed 's/^/    /'
  exit 1
}
# quietly CMD...: run CMD with its output in the log.
quietly() { printf '\n$ %s\n' "$*" >>"$LOG"; "$@" >>"$LOG" 2>&1; }

: >"$LOG"
BUILD=operator/pythonapp_operator/devcluster/build-controlplane.sh
echo "pythonapp-operator demo: a local control plane (no Docker), the CRD, the operator, the examples."
plan=$(bash "$BUILD" --plan 2>&1 >/dev/null | head -n 1) || true
case $plan in
  *cached:*) echo "The control plane is already built: this takes under a minute." ;;
  *) minutes=$(sed -n 's/.* about \([0-9]*\) minutes.*/\1/p' <<<"$plan")
     echo "First run: about ${minutes:-10} minutes on 2 cores (the control plane is built from Go modules); later runs take seconds." ;;
esac
echo "Full log: $LOG"

step "Python virtualenv (.venv)"
quietly make --no-print-directory venv || fail "creating the virtualenv"

step "control plane binaries (cached in $CACHE/bin)"
# The build script prints its own steps (n of m, time, what is left) and names its log.
if ! bash "$BUILD" 2>&1 >>"$LOG" | sed 's/^/    /'; then
  say "FAILED: building the control plane (see above)"
  exit 1
fi

step "local cluster (pythonapp dev up: etcd, kube-apiserver, controller-manager, scheduler, kwok)"
quietly "$BIN/pythonapp" dev up || fail "starting the local cluster"
KUBECONFIG="$("$BIN/pythonapp" dev kubeconfig)"; export KUBECONFIG
# The demo's cluster is the user's dev cluster (`pythonapp dev kubeconfig`); recorded so that
# `down` stops this one and the test session refuses to share it with the demo's operator
# (tests/conftest.py: the tests run on a cluster of their own).
dirname "$KUBECONFIG" >"$STATE/cluster"
KUBECTL="$("$BIN/python" -c 'from pythonapp_operator.devcluster import binaries; print(binaries.find().kubectl)')"
k() { "$KUBECTL" "$@"; }

step "CRD pythonapps.pythonapp.dev"
quietly k apply --server-side --force-conflicts -f crds/pythonapps.yaml || fail "applying the CRD"
quietly k wait --for=condition=Established crd/pythonapps.pythonapp.dev --timeout=60s \
  || fail "waiting for the CRD"

step "operator (log: $STATE/operator.log)"
if [ -f "$STATE/operator.pid" ] && kill -0 "$(cat "$STATE/operator.pid")" 2>/dev/null; then
  echo "    already running (pid $(cat "$STATE/operator.pid"))"
else
  nohup "$BIN/pythonapp" operator --all-namespaces --health 127.0.0.1:18080 \
    >"$STATE/operator.log" 2>&1 </dev/null &
  echo $! >"$STATE/operator.pid"
  for _ in $(seq 1 60); do
    curl -fsS http://127.0.0.1:18080/healthz >/dev/null 2>&1 && break
    sleep 0.5
  done
fi

step "examples (namespace demo, with sample Secrets), waiting for Ready"
{
  k create namespace demo --dry-run=client -o yaml | k apply -f -
  for s in shop-db mailer-smtp; do
    k -n demo create secret generic "$s" --from-literal=password=demo-only --dry-run=client -o yaml | k apply -f -
  done
  k -n demo create secret generic shop-api --from-literal=token=demo-only --dry-run=client -o yaml | k apply -f -
} >>"$LOG" 2>&1 || fail "creating the demo namespace and Secrets"
applied=$SECONDS
quietly k apply --server-side -f examples/ || fail "applying examples/"
quietly k -n demo wait --for=condition=Ready pythonapp --all --timeout=180s \
  || fail "waiting for the examples to be Ready"

say "done: apply -> Ready in $((SECONDS - applied)) s"
echo
k -n demo get pythonapp -o wide
echo
k -n demo get deployment
cat <<MSG

Try:  export KUBECONFIG=$KUBECONFIG
      $KUBECTL -n demo describe pythonapp shop
      $KUBECTL -n demo set image deploy/shop app=nginx@sha256:$(printf '0%.0s' {1..64})   # drift: put back
Stop: make demo-down
MSG
