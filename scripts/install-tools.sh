#!/usr/bin/env bash
# Install the third-party tools the tests run:
#   checkers, on `pythonapp render` output (tests/policy) and on deploy/ (tests/deploy):
#     kube-score, kube-linter, Polaris (Go, built from the Go module proxy) and Checkov (PyPI, in
#     a virtualenv of its own: it pins old boto3/packaging, so it stays out of the project's venv);
#   kubectl-validate (schema validation of deploy/, offline built-in schemas) and actionlint
#     (the GitHub Actions workflow), both Go;
#   kstatus-check (tests/gitops/kstatus, this repo's Go source): kstatus and Flux's CEL health
#     checks, run by tests/gitops on the captured PythonApp objects.
#
#   scripts/install-tools.sh [TOOL...]
#     TOOL: kube-score kube-linter polaris checkov kubectl-validate actionlint kstatus-check
#           (default: all)
#
# Idempotent. Each tool lands in a cache outside the repo, keyed by version (kstatus-check: by
# a hash of its sources, so an edit rebuilds it):
#   ${PYTHONAPP_CACHE:-$HOME/.cache/pythonapp-operator}/tools/<name>-<version>/bin/<name>
# and is recorded (only once it ran offline) in tools/tools.env, lines NAME=/abs/path, which
# tests/installed_tools.py reads. The last stdout line is the path of that env file.
# Nothing is downloaded except through the Go module proxy and PyPI.
set -euo pipefail

KUBE_SCORE_VERSION=v1.20.0
KUBE_LINTER_VERSION=v0.8.3
# Polaris: its go.mod says `module github.com/fairwindsops/polaris` (no /v10 suffix), so the Go
# toolchain refuses its release tags (10.x) and only a commit pinned as a pseudo-version can be
# built. The module proxy reachable here answers only exact versions (no tag, branch or commit
# lookups, no version lists), so the commit must be named with its exact timestamp. This is the
# one Fairwinds itself pins in insights-plugins (plugins/admission/go.mod), between releases
# 10.1.8 and 10.2.0. The exact 10.2.2 commit could not be named (10.2.1 added Pod support to the
# resource provider; 10.2.2's release notes list no change over it); move this pin to it when its
# timestamp is known. The checksum database behind that proxy has no record of this version, so
# its go.sum hashes are pinned here (they match insights-plugins' go.sum).
POLARIS_VERSION=v0.0.0-20260401181752-47c7deddfd66
POLARIS_GOSUM="github.com/fairwindsops/polaris $POLARIS_VERSION h1:3q+OuVEZ6xowXMVNtEd3XTxEt3X8tyuWZDsaOu72FvU=
github.com/fairwindsops/polaris $POLARIS_VERSION/go.mod h1:sx3fqGtcV96tr7MSchhRcbwBDJ0BLx1Le+ToTQpzfA4="
CHECKOV_VERSION=3.3.30
# kubectl-validate: v0.0.4 is the newest release the module proxy serves (its built-in schemas
# reach Kubernetes 1.30; tests/deploy pass --version 1.30 so nothing is ever downloaded).
KUBECTL_VALIDATE_VERSION=v0.0.4
ACTIONLINT_VERSION=v1.7.9
KSTATUS_CHECK_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/gitops/kstatus"

CACHE="${PYTHONAPP_CACHE:-$HOME/.cache/pythonapp-operator}"
TOOLS="$CACHE/tools"
ENV_FILE="$TOOLS/tools.env"
START=$SECONDS

log() { printf '[install-tools +%4ss] %s\n' "$((SECONDS - START))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$TOOLS"

# record NAME PATH: add or replace NAME's line in the env file.
record() {
    local name=$1 path=$2 tmp
    tmp=$(mktemp "$TOOLS/.env.XXXXXX")
    if [[ -f $ENV_FILE ]]; then
        grep -v "^${name}=" "$ENV_FILE" >"$tmp" || true # grep exits 1 when no line is left
    fi
    printf '%s=%s\n' "$name" "$path" >>"$tmp"
    sort -o "$tmp" "$tmp"
    mv "$tmp" "$ENV_FILE"
}

# finish NAME DIR T0 BIN VERSION-ARGS...: verify the tool runs (offline), stamp, record.
finish() {
    local name=$1 dir=$2 t0=$3 bin=$4
    shift 4
    local out
    if ! out=$("$bin" "$@" 2>&1); then
        die "$name installed at $bin but '$name $*' failed: $out"
    fi
    out=$(head -n1 <<<"$out")
    local took=$((SECONDS - t0)) size
    size=$(du -sh "$dir" | cut -f1)
    printf 'version: %s\ninstall_seconds: %s\nsize: %s\n' "$out" "$took" "$size" >"$dir/.installed"
    record "$name" "$bin"
    log "$name ok: $out (installed in ${took}s, $size)"
}

need_go() {
    command -v go >/dev/null 2>&1 \
        || die "Go is not installed (need Go >= 1.26 on PATH to build the Go tools: see go.dev/doc/install)"
    # Polaris' go.mod asks for go 1.26 and GOTOOLCHAIN=local forbids fetching a newer toolchain.
    local v minor
    v=$(GOTOOLCHAIN=local go env GOVERSION)
    minor=$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"$v")
    [[ $v == go1.* && $minor -ge 26 ]] \
        || die "Go $v is too old: building the tools needs Go >= 1.26 (see go.dev/doc/install)"
}

# go_tool NAME DIRVERSION MODULE VERSION FETCH_FROM GOSUM PACKAGE LDFLAGS VERSION-ARGS...
# Builds PACKAGE from MODULE@VERSION inside a throwaway module, so that
#  - a module whose canonical path is on a vanity host the proxy does not serve can be fetched
#    from its repository path instead (FETCH_FROM; a `replace`, the module's own go.mod and
#    dependency versions are used unchanged, as `go install pkg@version` would);
#  - checksums the public checksum database cannot give can be pinned (GOSUM: go.sum lines);
#  - the version can be stamped into the binary (LDFLAGS).
go_tool() {
    local name=$1 dirversion=$2 module=$3 version=$4 fetch=$5 gosum=$6 pkg=$7 ldflags=$8
    shift 8
    local dir="$TOOLS/$name-$dirversion" t0=$SECONDS
    local bin="$dir/bin/$name"
    if [[ -f $dir/.installed && -x $bin ]]; then
        record "$name" "$bin"
        log "$name $dirversion already installed ($dir)"
        return
    fi
    need_go
    log "building $name $dirversion ($module@$version) with $(go env GOVERSION); a few minutes ..."
    rm -rf "$dir"
    mkdir -p "$dir/bin" "$dir/src"
    {
        printf 'module local/build-%s\n\ngo 1.24\n\nrequire %s %s\n' "$name" "$module" "$version"
        [[ -z $fetch ]] || printf '\nreplace %s => %s %s\n' "$module" "$fetch" "$version"
    } >"$dir/src/go.mod"
    [[ -z $gosum ]] || printf '%s\n' "$gosum" >"$dir/src/go.sum"
    # GOTOOLCHAIN=local: never download a toolchain. -mod=mod: resolve the module's own
    # requirements into the throwaway go.mod/go.sum (checksums still verified by the sumdb).
    if ! (cd "$dir/src" && GOTOOLCHAIN=local GOFLAGS="-mod=mod" \
        go build -trimpath -ldflags="-s -w $ldflags" -o "$bin" "$pkg" >&2); then
        rm -rf "$dir"
        die "building $name failed: go build $pkg from $module@$version (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
    fi
    rm -rf "$dir/src"
    finish "$name" "$dir" "$t0" "$bin" "$@"
}

install_checkov() {
    local dir="$TOOLS/checkov-$CHECKOV_VERSION" t0=$SECONDS
    local bin="$dir/bin/checkov"
    if [[ -f $dir/.installed && -x $bin ]]; then
        record checkov "$bin"
        log "checkov $CHECKOV_VERSION already installed ($dir)"
        return
    fi
    local py
    py=$(command -v python3) || die "python3 is not installed (Checkov needs Python 3.9..3.12 with venv)"
    log "installing checkov $CHECKOV_VERSION into its own virtualenv with $("$py" --version) ..."
    rm -rf "$dir"
    mkdir -p "$dir/bin"
    "$py" -m venv "$dir/venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$dir/venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir \
        "checkov==$CHECKOV_VERSION" >&2 || { rm -rf "$dir"; die "pip install checkov==$CHECKOV_VERSION failed"; }
    # A wrapper that keeps Checkov offline: no update check, no mapping download.
    cat >"$bin" <<EOF
#!/bin/sh
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE
exec "$dir/venv/bin/checkov" "\$@"
EOF
    chmod +x "$bin"
    finish checkov "$dir" "$t0" "$bin" --version
}

# source_hash DIR: sha256 of DIR's files in name order, 12 hex digits (tests/gitops/kstatus.py
# computes the same to refuse a binary built from other sources).
source_hash() {
    local f
    (cd "$1" && for f in $(find . -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort); do cat "$f"; done) \
        | sha256sum | cut -c1-12
}

# kstatus-check: built from the repo's own module (its go.mod and go.sum pin every dependency).
install_kstatus_check() {
    local hash dir bin t0=$SECONDS
    hash=$(source_hash "$KSTATUS_CHECK_SRC")
    dir="$TOOLS/kstatus-check-$hash"
    bin="$dir/bin/kstatus-check"
    if [[ -f $dir/.installed && -x $bin ]]; then
        record kstatus-check "$bin"
        log "kstatus-check $hash already installed ($dir)"
        return
    fi
    need_go
    log "building kstatus-check from $KSTATUS_CHECK_SRC (sources $hash) with $(go env GOVERSION); a few minutes the first time ..."
    # Builds of other sources are kept: another checkout sharing this cache may still use one.
    mkdir -p "$dir/bin"
    if ! (cd "$KSTATUS_CHECK_SRC" && GOTOOLCHAIN=local \
        go build -mod=readonly -buildvcs=false -trimpath -ldflags="-s -w" -o "$bin" . >&2); then
        rm -rf "$dir"
        die "building kstatus-check failed: go build in $KSTATUS_CHECK_SRC (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
    fi
    finish kstatus-check "$dir" "$t0" "$bin" -version
}

install_one() {
    case $1 in
    kube-score)
        go_tool kube-score "${KUBE_SCORE_VERSION#v}" github.com/zegl/kube-score "$KUBE_SCORE_VERSION" "" "" \
            github.com/zegl/kube-score/cmd/kube-score "-X main.version=${KUBE_SCORE_VERSION#v}" version ;;
    kube-linter)
        # golang.stackrox.io is a vanity host that the module proxy here does not serve; the same
        # module (same go.mod, same tag) is fetched by its repository path.
        go_tool kube-linter "${KUBE_LINTER_VERSION#v}" golang.stackrox.io/kube-linter "$KUBE_LINTER_VERSION" \
            github.com/stackrox/kube-linter "" golang.stackrox.io/kube-linter/cmd/kube-linter \
            "-X golang.stackrox.io/kube-linter/internal/version.version=${KUBE_LINTER_VERSION#v}" version ;;
    polaris)
        go_tool polaris "${POLARIS_VERSION#v}" github.com/fairwindsops/polaris "$POLARIS_VERSION" "" \
            "$POLARIS_GOSUM" github.com/fairwindsops/polaris "-X main.Version=${POLARIS_VERSION#v}" version ;;
    checkov) install_checkov ;;
    kstatus-check) install_kstatus_check ;;
    kubectl-validate)
        go_tool kubectl-validate "${KUBECTL_VALIDATE_VERSION#v}" sigs.k8s.io/kubectl-validate \
            "$KUBECTL_VALIDATE_VERSION" "" "" sigs.k8s.io/kubectl-validate "" --help ;;
    actionlint)
        go_tool actionlint "${ACTIONLINT_VERSION#v}" github.com/rhysd/actionlint "$ACTIONLINT_VERSION" \
            "" "" github.com/rhysd/actionlint/cmd/actionlint \
            "-X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION" -version ;;
    *) die "unknown tool '$1' (known: $ALL_TOOLS)" ;;
    esac
}

ALL_TOOLS="kube-score kube-linter polaris checkov kubectl-validate actionlint kstatus-check"
if (($# == 0)); then
    # shellcheck disable=SC2086  # word splitting of the list is the point
    set -- $ALL_TOOLS
fi
for tool in "$@"; do
    install_one "$tool"
done
log "done in $((SECONDS - START))s; tools in $TOOLS"
echo "$ENV_FILE"
