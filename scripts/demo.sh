#!/usr/bin/env bash
# make demo: fresh machine -> local cluster, CRD installed, operator running, examples Ready.
#   scripts/demo.sh        bring it all up and show it
#   scripts/demo.sh down   stop the operator and the cluster
# Where the machine allows a real node (root with apt-get: the Makefile's REAL_NODE, passed as
# PYTHONAPP_REAL_NODE; PYTHONAPP_REAL_NODE=0 opts out), the cluster gets one (`pythonapp dev up
# --real-node`: containerd + a kubelet, its Debian packages installed first) and the sample app
# (examples/app) runs on real pods too: its image built without Docker, pushed to the loopback
# registry, applied by digest in namespace demo-real, whose pods land on the real node.
# Elsewhere the examples run on kwok's simulated nodes only.
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
if [ -n "${PYTHONAPP_REAL_NODE:-}" ]; then
  REAL_NODE=$PYTHONAPP_REAL_NODE
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  REAL_NODE=1
else
  REAL_NODE=0
fi
STEPS=6
if [ "$REAL_NODE" = 1 ]; then STEPS=9; fi
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

UP_ARGS=()
if [ "$REAL_NODE" = 1 ]; then
  step "real node's Debian packages (containerd, runc, CNI plugins, registry, image tools)"
  quietly bash scripts/realnode-packages.sh || fail "installing the real node's packages"
  UP_ARGS=(--real-node)
  step "local cluster (pythonapp dev up --real-node: the control plane, kwok, a real kubelet)"
else
  step "local cluster (pythonapp dev up: etcd, kube-apiserver, controller-manager, scheduler, kwok)"
fi
quietly "$BIN/pythonapp" dev up "${UP_ARGS[@]}" || fail "starting the local cluster"
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

step "examples (namespace demo, with sample Secrets and a ConfigMap), waiting for Ready"
{
  k create namespace demo --dry-run=client -o yaml | k apply -f -
  for s in shop-db mailer-smtp store-database; do
    k -n demo create secret generic "$s" --from-literal=password=demo-only --dry-run=client -o yaml | k apply -f -
  done
  k -n demo create secret generic shop-api --from-literal=token=demo-only --dry-run=client -o yaml | k apply -f -
  # examples/private-registry.yaml: its registry credentials (never read by the operator) and
  # its settings (kwok's pods pull nothing: the registry is a placeholder)
  k -n demo create secret docker-registry catalog-registry --docker-server=registry.example.com \
    --docker-username=demo --docker-password=demo-only --dry-run=client -o yaml | k apply -f -
  k -n demo create configmap catalog-settings --from-literal=log-level=info \
    --from-literal=gunicorn.conf.py='workers = 2' --dry-run=client -o yaml | k apply -f -
} >>"$LOG" 2>&1 || fail "creating the demo namespace, Secrets and ConfigMap"
applied=$SECONDS
quietly k apply --server-side -f examples/ || fail "applying examples/"
quietly k -n demo wait --for=condition=Ready pythonapp --all --timeout=180s \
  || fail "waiting for the examples to be Ready"

say "examples Ready: apply -> Ready in $((SECONDS - applied)) s"

if [ "$REAL_NODE" = 1 ]; then
  step "image of examples/app without Docker (base rootfs cached after the first run)"
  IMAGE=$("$BIN/pythonapp" dev image build examples/app --name sample-app 2>>"$LOG") \
    || fail "building examples/app's image"
  echo "    $IMAGE"

  step "sample app on real pods (namespace demo-real, on the real node), waiting for Ready"
  # The namespace's annotations (PodNodeSelector/PodTolerationRestriction) send its pods to the
  # real node; the PythonApp is examples/app/pythonapp.yaml with the image just built.
  "$BIN/python" - "$IMAGE" "$STATE" 2>>"$LOG" <<'PY' || fail "writing the demo-real manifests"
import json, sys, yaml
from pythonapp_operator.devcluster import realnode
image, state = sys.argv[1:]
ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo-real",
      "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
      "annotations": realnode.namespace_annotations()}}
with open("examples/app/pythonapp.yaml") as f:
    app = yaml.safe_load(f)
app["metadata"]["namespace"] = "demo-real"
app["spec"]["image"] = image
for name, obj in (("namespace", ns), ("app", app)):
    with open(f"{state}/demo-real-{name}.json", "w") as f:
        json.dump(obj, f)
PY
  {
    k apply --server-side -f "$STATE/demo-real-namespace.json"
    k -n demo-real create secret generic sample-app-api --from-literal=token=demo-only --dry-run=client -o yaml | k apply -f -
  } >>"$LOG" 2>&1 || fail "creating namespace demo-real and its Secret"
  real_applied=$SECONDS
  quietly k apply --server-side -f "$STATE/demo-real-app.json" || fail "applying the sample app"
  quietly k -n demo-real wait --for=condition=Ready pythonapp/sample-app --timeout=180s \
    || fail "waiting for the sample app on real pods"
  say "sample app Ready on real pods: apply -> Ready in $((SECONDS - real_applied)) s"
fi

say "done in $(duration $((SECONDS - START)))"
echo
k -n demo get pythonapp -o wide
echo
k -n demo get deployment
if [ "$REAL_NODE" = 1 ]; then
  echo
  echo "On real pods (node pythonapp-dev-real-node: containerd + kubelet on this machine):"
  k -n demo-real get pythonapp -o wide
  echo
  k -n demo-real get pods -o wide
fi
TRY_REAL=""
if [ "$REAL_NODE" = 1 ]; then TRY_REAL="
      $KUBECTL -n demo-real logs deploy/sample-app   # a real process's log"; fi
cat <<MSG

Try:  export KUBECONFIG=$KUBECONFIG
      $KUBECTL -n demo describe pythonapp shop$TRY_REAL
      $KUBECTL -n demo set image deploy/shop app=nginx@sha256:$(printf '0%.0s' {1..64})   # drift: put back
Stop: make demo-down
MSG
