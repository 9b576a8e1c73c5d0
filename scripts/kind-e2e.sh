#!/usr/bin/env bash
# The shipped artifacts on a real kind cluster (needs Docker, kind, kubectl >= 1.30):
#   the image builds; deploy/overlays/kind installs with no warning under restricted Pod
#   Security; the operator pod becomes Available (so the non-root image, its health endpoint,
#   the probes and the projected service-account token work in a real kubelet); and it
#   reconciles a PythonApp in-cluster (children created, status patched, no RBAC denial).
#
#   scripts/kind-e2e.sh            KIND_CLUSTER=pythonapp (created if missing, kept afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${KIND_CLUSTER:-pythonapp}
IMAGE=pythonapp-operator:dev
NS=pythonapp-system
APP_NS="kind-e2e"
START=$SECONDS
log() { printf '[kind-e2e +%4ss] %s\n' "$((SECONDS - START))" "$*" >&2; }
fail() { log "FAILED: $*"; kubectl -n "$NS" describe deploy/pythonapp-operator >&2 || true; kubectl -n "$NS" logs deploy/pythonapp-operator --tail=100 >&2 || true; exit 1; }

for tool in docker kind kubectl; do
    command -v "$tool" >/dev/null || { log "$tool is not installed"; exit 1; }
done
VERSION=$(python3 -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])")
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)

log "building $IMAGE ($VERSION, $REVISION)"
docker build --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" -t "$IMAGE" .

if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    log "creating kind cluster $CLUSTER"
    kind create cluster --name "$CLUSTER" --wait 180s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null
kind load docker-image "$IMAGE" --name "$CLUSTER"

log "applying deploy/overlays/kind"
errors=$(mktemp)
kubectl apply --server-side -k deploy/overlays/kind 2>"$errors" || { cat "$errors" >&2; fail "apply"; }
if grep -q "Warning:" "$errors"; then cat "$errors" >&2; fail "kubectl apply warned"; fi
kubectl wait --for=condition=Established crd/pythonapps.pythonapp.dev --timeout=60s
kubectl -n "$NS" rollout status deploy/pythonapp-operator --timeout=180s || fail "operator not Available"

log "reconciling a PythonApp in-cluster"
kubectl create namespace "$APP_NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f - <<YAML
apiVersion: pythonapp.dev/v1alpha1
kind: PythonApp
metadata:
  name: hello
  namespace: $APP_NS
spec:
  image: ghcr.io/acme/hello:1.0.0@sha256:3b1f4b6d2a7c9e0f3b1f4b6d2a7c9e0f3b1f4b6d2a7c9e0f3b1f4b6d2a7c9e0f
  replicas: 1
  resources:
    limits:
      memory: 128Mi
YAML
# The image does not exist (no registry here): Ready stays False, but the operator must have
# created every child and recorded what it saw for this generation.
for _ in $(seq 60); do
    observed=$(kubectl -n "$APP_NS" get pyapp hello -o jsonpath='{.status.observedGeneration}')
    [[ $observed == 1 ]] && break
    sleep 2
done
[[ ${observed:-} == 1 ]] || fail "status.observedGeneration not set by the operator"
for kind in deployment service serviceaccount poddisruptionbudget networkpolicy; do
    kubectl -n "$APP_NS" get "$kind" hello >/dev/null || fail "$kind hello was not created"
done
if kubectl -n "$NS" logs deploy/pythonapp-operator | grep -E "cannot [a-z]+ resource|Not enough permissions"; then
    fail "the operator was denied something by RBAC"
fi
log "ok: image built, operator Available under restricted PSS, PythonApp reconciled in-cluster"
