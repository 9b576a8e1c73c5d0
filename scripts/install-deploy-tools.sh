#!/usr/bin/env bash
# Install the Go tools tests/deploy runs on deploy/ and .github/workflows/:
#   kubectl-validate  schema validation of the kustomized manifests, offline (built-in schemas)
#   actionlint        the GitHub Actions workflow linter
#
#   scripts/install-deploy-tools.sh [TOOL...]     TOOL: kubectl-validate actionlint
#
# Idempotent; only `go install` from the Go module proxy (GOTOOLCHAIN=local: never a toolchain
# download). Each tool lands in a cache outside the repo, keyed by version:
#   ${PYTHONAPP_CACHE:-$HOME/.cache/pythonapp-operator}/tools/<name>-<version>/bin/<name>
# and is recorded (once it ran) in tools/deploy-tools.env, lines NAME=/abs/path, which
# tests/deploy reads. The last stdout line is the path of that env file.
# (hadolint comes from PyPI with the test extra; Checkov from scripts/install-checkers.sh.)
set -euo pipefail

# kubectl-validate: v0.0.4 is the newest release the module proxy serves (its built-in schemas
# reach Kubernetes 1.30; tests/deploy pass --version 1.30 so nothing is ever downloaded).
KUBECTL_VALIDATE_VERSION=v0.0.4
ACTIONLINT_VERSION=v1.7.9

CACHE="${PYTHONAPP_CACHE:-$HOME/.cache/pythonapp-operator}"
TOOLS="$CACHE/tools"
ENV_FILE="$TOOLS/deploy-tools.env"
START=$SECONDS

log() { printf '[install-deploy-tools +%4ss] %s\n' "$((SECONDS - START))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$TOOLS"

# record NAME PATH: add or replace NAME's line in the env file (atomically).
record() {
    local name=$1 path=$2 tmp
    tmp=$(mktemp "$TOOLS/.deploy-env.XXXXXX")
    if [[ -f $ENV_FILE ]]; then grep -v "^${name}=" "$ENV_FILE" >"$tmp" || true; else : >"$tmp"; fi
    printf '%s=%s\n' "$name" "$path" >>"$tmp"
    sort -o "$tmp" "$tmp"
    mv "$tmp" "$ENV_FILE"
}

# go_install NAME VERSION PACKAGE@VERSION VERSION-ARGS...
go_install() {
    local name=$1 version=$2 pkg=$3
    shift 3
    local dir="$TOOLS/$name-${version#v}" t0=$SECONDS
    local bin="$dir/bin/$name"
    if [[ -f $dir/.installed && -x $bin ]]; then
        record "$name" "$bin"
        log "$name $version already installed ($dir)"
        return
    fi
    command -v go >/dev/null 2>&1 \
        || die "Go is not installed (need Go >= 1.24 on PATH: apt-get install golang or see go.dev/doc/install)"
    log "go install $pkg with $(go env GOVERSION) ..."
    rm -rf "$dir"
    mkdir -p "$dir/bin"
    if ! GOTOOLCHAIN=local GOBIN="$dir/bin" GOFLAGS="-trimpath" \
        go install -ldflags="-s -w" "$pkg" >&2; then
        rm -rf "$dir"
        die "go install $pkg failed (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
    fi
    local out
    out=$("$bin" "$@" 2>&1 | head -n1) || true
    [[ -n $out ]] || die "$name installed at $bin but '$name $*' printed nothing"
    printf 'version: %s\ninstall_seconds: %s\nsize: %s\n' "$out" "$((SECONDS - t0))" \
        "$(du -sh "$dir" | cut -f1)" >"$dir/.installed"
    record "$name" "$bin"
    log "$name ok: $out (in $((SECONDS - t0))s)"
}

install_one() {
    case $1 in
    kubectl-validate)
        go_install kubectl-validate "$KUBECTL_VALIDATE_VERSION" \
            "sigs.k8s.io/kubectl-validate@$KUBECTL_VALIDATE_VERSION" --help ;;
    actionlint)
        go_install actionlint "$ACTIONLINT_VERSION" \
            "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" -version ;;
    *) die "unknown tool '$1' (known: kubectl-validate actionlint)" ;;
    esac
}

if (($# == 0)); then
    set -- kubectl-validate actionlint
fi
for tool in "$@"; do
    install_one "$tool"
done
log "done in $((SECONDS - START))s; tools in $TOOLS"
echo "$ENV_FILE"
