#!/usr/bin/env bash
# make demo: fresh machine -> local cluster, CRD installed, operator running, examples Ready.
#   scripts/demo.sh        bring it all up and show it
#   scripts/demo.sh down   stop the operator and the cluster
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
STATE="${PYTHONAPP_CACHE:-$HOME/.cache/pythonapp-operator}/demo"
mkdir -p "$STATE"
say() { printf '\n==> %s\n' "$*"; }

if [ "${1:-}" = down ]; then
  if [ -f "$STATE/operator.pid" ] && kill -0 "$(cat "$STATE/operator.pid")" 2>/dev/null; then
    kill -TERM "$(cat "$STATE/operator.pid")" && say "operator stopped"
  fi
  rm -f "$STATE/operator.pid"
  "$BIN/pythonapp" dev down
  exit 0
fi

start=$SECONDS
say "local control plane (first run builds it from Go modules: ~6 min on 2 cores)"
"$BIN/pythonapp" dev up
KUBECONFIG="$("$BIN/pythonapp" dev kubeconfig)"; export KUBECONFIG
KUBECTL="$("$BIN/python" -c 'from pythonapp_operator.devcluster import binaries; print(binaries.find().kubectl)')"
k() { "$KUBECTL" "$@"; }

say "CRD"
k apply --server-side --force-conflicts -f crds/pythonapps.yaml
k wait --for=condition=Established crd/pythonapps.pythonapp.dev --timeout=60s

say "operator (log: $STATE/operator.log)"
if [ -f "$STATE/operator.pid" ] && kill -0 "$(cat "$STATE/operator.pid")" 2>/dev/null; then
  echo "already running (pid $(cat "$STATE/operator.pid"))"
else
  nohup "$BIN/pythonapp" operator --all-namespaces --health 127.0.0.1:18080 \
    >"$STATE/operator.log" 2>&1 </dev/null &
  echo $! >"$STATE/operator.pid"
  for _ in $(seq 1 60); do
    curl -fsS http://127.0.0.1:18080/healthz >/dev/null 2>&1 && break
    sleep 0.5
  done
fi

say "examples (namespace demo, with sample Secrets)"
k create namespace demo --dry-run=client -o yaml | k apply -f -
for s in shop-db mailer-smtp; do
  k -n demo create secret generic "$s" --from-literal=password=demo-only --dry-run=client -o yaml | k apply -f -
done
k -n demo create secret generic shop-api --from-literal=token=demo-only --dry-run=client -o yaml | k apply -f -
applied=$SECONDS
k apply --server-side -f examples/
k -n demo wait --for=condition=Ready pythonapp --all --timeout=180s
ready=$SECONDS

say "result (apply -> Ready: $((ready - applied)) s; whole demo: $((ready - start)) s)"
k -n demo get pythonapp,deployment
cat <<MSG

Try:  export KUBECONFIG=$KUBECONFIG
      $KUBECTL -n demo describe pythonapp shop
      $KUBECTL -n demo set image deploy/shop app=nginx@sha256:$(printf '0%.0s' {1..64})   # drift: put back
Stop: make demo-down
MSG
