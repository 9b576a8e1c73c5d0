#!/usr/bin/env bash
# Obtain the local control plane's binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok, and the kubelet of `pythonapp dev up --real-node`) at pinned
# versions, cached outside the repo by version.
#
# Official release downloads are tried first (fast where the network allows); when they fail,
# everything is built from the Go module proxy with GOTOOLCHAIN=local. Kubernetes and etcd have
# local `replace` directives, so `go install` cannot build them; a throw-away wrapper module
# re-maps every staging module to its published version (the list is derived from the
# kubernetes go.mod the proxy serves, never kept by hand).
#
# Measured (2 cores, empty bin cache, 2026-11): kwok 103 s, etcd 25 s, kube-apiserver 240 s,
# controller-manager 80 s, scheduler + kubectl 25 s: ~8 min in all, ~10 with the module
# downloads; the kubelet alone, added to a warm cache, 61 s (binary 80 MB). Disk: binaries 406 MB, Go module cache 1.9 GB (~/go/pkg/mod), Go build cache
# 4.5 GB (~/.cache/go-build; may be cleared with `go clean -cache` once the binaries exist).
# With the bin dir present it is instant.
#
# Output: one line per step on stderr ("[controlplane  1m05s] 3/7 kube-apiserver ..."), with
# the time elapsed, the step's number and what remains; the Go tools' own output (hundreds of
# `go: downloading` lines) goes to a log file whose path the first line names. On failure the
# end of that log is shown. The last stdout line is the bin dir.
#
# Usage: build-controlplane.sh            build what is missing
#        build-controlplane.sh --plan     only say what would be built and how long it takes
# Env:   PYTHONAPP_CACHE (default ~/.cache/pythonapp-operator), K8S_VERSION, ETCD_VERSION,
#        KWOK_VERSION, PYTHONAPP_NO_DOWNLOAD=1 to skip the download attempt.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
CACHE=${PYTHONAPP_CACHE:-$HOME/.cache/pythonapp-operator}
BIN="$CACHE/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
WORK="$CACHE/build"
LOG="$WORK/controlplane.log"
START=$(date +%s)
PLAN=0
[ "${1:-}" = --plan ] && PLAN=1

# duration SECONDS: 42s, 3m05s
duration() { if [ "$1" -lt 60 ]; then printf '%ss' "$1"; else printf '%sm%02ds' $(($1 / 60)) $(($1 % 60)); fi; }
say() { printf '[controlplane %6s] %s\n' "$(duration $(( $(date +%s) - START )))" "$*" >&2; }
die() {
  say "ERROR: $*"
  if [ -s "$LOG" ]; then
    say "last lines of the build log ($LOG):"
    tail -n 25 "$LOG" | sed 's/^/    /' >&2
  fi
  exit 1
}
trap 'say "ERROR: unexpected failure at line $LINENO (exit $?); build log: $LOG"' ERR
# logged CMD...: run CMD with its output appended to the build log.
logged() { "$@" >>"$LOG" 2>&1; }

want=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kwok)
k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet)
have_all() { for b in "${want[@]}"; do [ -x "$BIN/$b" ] || return 1; done; }

if have_all; then
  say "cached: $BIN"
  echo "$BIN"
  exit 0
fi

# ---------------------------------------------------------------- the plan
# Steps still to do, in build order, each with what it usually takes on 2 cores (seconds).
steps=()
declare -A estimate=([kwok]=105 [etcd]=45 [k8s-modules]=60 [kube-apiserver]=240
  [kube-controller-manager]=90 [kube-scheduler]=30 [kubectl]=30 [kubelet]=60)
declare -A label=([kwok]="kwok $KWOK_VERSION" [etcd]="etcd $ETCD_VERSION"
  [k8s-modules]="Kubernetes $K8S_VERSION modules (download, resolve)")
[ -x "$BIN/kwok" ] || steps+=(kwok)
[ -x "$BIN/etcd" ] || steps+=(etcd)
k8s_missing=()
for b in "${k8s_bins[@]}"; do [ -x "$BIN/$b" ] || k8s_missing+=("$b"); done
if [ "${#k8s_missing[@]}" -gt 0 ]; then steps+=(k8s-modules "${k8s_missing[@]}"); fi
total=${#steps[@]}
done_steps=0

# remaining_after INDEX: the steps after step INDEX (1-based), comma-separated.
remaining_after() {
  local i out=""
  for ((i = $1; i < total; i++)); do out+="${out:+, }${steps[$i]}"; done
  printf '%s' "$out"
}
# step NAME: announce the next step: n/m, what it is, how long it usually takes, what is left.
step() {
  done_steps=$((done_steps + 1))
  local rest
  rest=$(remaining_after "$done_steps")
  say "$done_steps/$total ${label[$1]:-$1 $K8S_VERSION} (usually ~$(duration "${estimate[$1]}"))${rest:+; then $rest}"
}

expected=0
for s in "${steps[@]}"; do expected=$((expected + estimate[$s])); done
say "missing: ${steps[*]}; building takes about $(( (expected + 30) / 60 )) minutes on 2 cores the first time, seconds after"
if [ "$PLAN" = 1 ]; then
  for s in "${steps[@]}"; do step "$s"; done
  exit 0
fi
mkdir -p "$BIN" "$WORK"
: >"$LOG"
say "full build log: $LOG"

# ---------------------------------------------------------------- 1. official downloads
arch=$(uname -m); case "$arch" in x86_64) arch=amd64;; aarch64) arch=arm64;; esac
try_download() {  # url dest; quick failure when the network refuses
  curl -fsSL --connect-timeout 5 --max-time 300 -o "$2.part" "$1" 2>>"$LOG" && mv "$2.part" "$2" && chmod +x "$2"
}
if [ "${PYTHONAPP_NO_DOWNLOAD:-}" != 1 ] && command -v curl >/dev/null; then
  refused=()
  for b in "${k8s_bins[@]}"; do
    [ -x "$BIN/$b" ] || try_download "https://dl.k8s.io/release/$K8S_VERSION/bin/linux/$arch/$b" "$BIN/$b" \
      || { refused+=("$b"); rm -f "$BIN/$b.part"; break; }
  done
  [ -x "$BIN/kwok" ] || try_download "https://github.com/kubernetes-sigs/kwok/releases/download/$KWOK_VERSION/kwok-linux-$arch" "$BIN/kwok" \
    || { refused+=(kwok); rm -f "$BIN/kwok.part"; }
  if [ ! -x "$BIN/etcd" ]; then
    tgz="$WORK/etcd.tgz"
    if curl -fsSL --connect-timeout 5 --max-time 300 -o "$tgz" \
        "https://github.com/etcd-io/etcd/releases/download/$ETCD_VERSION/etcd-$ETCD_VERSION-linux-$arch.tar.gz" 2>>"$LOG"; then
      tar -xzf "$tgz" -C "$WORK" && cp "$WORK/etcd-$ETCD_VERSION-linux-$arch/etcd" "$BIN/etcd"
    else
      refused+=(etcd)
    fi
    rm -f "$tgz"
  fi
  if have_all; then say "done (official release downloads): $BIN"; echo "$BIN"; exit 0; fi
  [ "${#refused[@]}" -eq 0 ] || say "release downloads refused (${refused[*]}): building from Go modules"
fi

# ---------------------------------------------------------------- 2. build from Go modules
GO_MIN=1.26  # Kubernetes 1.36's modules declare go 1.26.0
command -v go >/dev/null || die "no Go toolchain on PATH and release downloads failed. Install Go >= $GO_MIN (https://go.dev/dl; Debian's golang-go is older), put it on PATH and re-run."
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
gov=$(go env GOVERSION)
gnum=${gov#go}; gmaj=${gnum%%.*}; gmin=${gnum#*.}; gmin=${gmin%%[!0-9]*}
if [ "$gmaj" -lt 1 ] || { [ "$gmaj" -eq 1 ] && [ "${gmin:-0}" -lt "${GO_MIN#1.}" ]; }; then
  die "$gov is too old: Kubernetes $K8S_VERSION needs Go >= $GO_MIN (GOTOOLCHAIN=local, so no automatic toolchain download). Install it from https://go.dev/dl and re-run."
fi
printf '# %s, module proxy %s\n' "$gov" "$(go env GOPROXY)" >>"$LOG"

# kwok: no replace directives, plain go install.
if [ ! -x "$BIN/kwok" ]; then
  step kwok
  GOBIN="$BIN" logged go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
    || die "building kwok failed"
  # kwok v0.8 ships no built-in stages: keep the module's stage YAMLs next to the binary.
  kdir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" 2>>"$LOG" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p') || true
  [ -n "$kdir" ] || die "could not download sigs.k8s.io/kwok@$KWOK_VERSION from the module proxy"
  rm -rf "$BIN/kwok-stages"; mkdir -p "$BIN/kwok-stages"
  cp -r "$kdir/kustomize/stage/." "$BIN/kwok-stages/"; chmod -R u+w "$BIN/kwok-stages"
fi

# etcd: the server module's root is the etcd main package (etcdmain.Main). Its go.mod maps the
# sibling modules (api, client, pkg) to ../ with replaces that a dependent module ignores, so a
# throw-away wrapper pins each of them to the published version. (The repository root module
# go.etcd.io/etcd/v3 is test tooling and the proxy does not even serve every 3.6 tag of it.)
if [ ! -x "$BIN/etcd" ]; then
  step etcd
  ew="$WORK/etcd-wrapper"; rm -rf "$ew"; mkdir -p "$ew"; cd "$ew"
  logged go mod init local/etcd-wrapper
  ejson=$(go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" 2>>"$LOG") || true
  edir=$(printf '%s\n' "$ejson" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -n "$edir" ] || die "could not download go.etcd.io/etcd/server/v3@$ETCD_VERSION from the module proxy: $(printf '%s\n' "$ejson" | sed -n 's/.*"Error": "\(.*\)".*/\1/p')"
  # Every `go.etcd.io/etcd/<x> => ../<x>` replace becomes a replace to the published version.
  { grep -E '^\s*go\.etcd\.io/etcd/[^ ]+ => \.\./' "$edir/go.mod" || true; } | awk '{print $1}' | sort -u | while read -r m; do
    go mod edit -replace "$m=$m@$ETCD_VERSION"
  done
  go mod edit -require "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go mod edit -go="$(sed -n 's/^go //p' "$edir/go.mod")"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
  logged go mod tidy || die "go mod tidy failed for the etcd wrapper"
  logged go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3 || die "building etcd failed"
  mv "$BIN/etcd.tmp" "$BIN/etcd"
  cd - >/dev/null
fi

# Kubernetes: wrapper module with a replace per staging module (derived from its go.mod).
if [ "${#k8s_missing[@]}" -gt 0 ]; then
  step k8s-modules
  kw="$WORK/k8s-wrapper"; rm -rf "$kw"; mkdir -p "$kw"; cd "$kw"
  logged go mod init local/k8s-wrapper
  kjson=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" 2>>"$LOG") || true
  kdir=$(printf '%s\n' "$kjson" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -n "$kdir" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION from the module proxy"
  staging_v="v0.${K8S_VERSION#v1.}"
  mods=$(grep -E '=> \./staging/' "$kdir/go.mod" | awk '{print $1}' | sort -u)
  [ -n "$mods" ] || die "found no staging replaces in $kdir/go.mod"
  printf '# mapping %s staging modules to %s\n' "$(echo "$mods" | wc -l)" "$staging_v" >>"$LOG"
  for m in $mods; do go mod edit -replace "$m=$m@$staging_v"; done
  go mod edit -require "k8s.io/kubernetes@$K8S_VERSION"
  # Keep the kubernetes module's own versions for everything else (its go.mod is authoritative).
  go mod edit -go="$(sed -n 's/^go //p' "$kdir/go.mod")"
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
  logged go mod tidy || die "go mod tidy failed for the Kubernetes wrapper"
  major=${K8S_VERSION#v}; major=${major%%.*}; minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for b in "${k8s_missing[@]}"; do
    step "$b"
    logged go build -trimpath -ldflags "$ld" -o "$BIN/$b.tmp" "k8s.io/kubernetes/cmd/$b" || die "building $b failed"
    mv "$BIN/$b.tmp" "$BIN/$b"
  done
  cd - >/dev/null
fi

have_all || die "some binaries are still missing in $BIN"
say "done: $BIN ($(du -sh "$BIN" | cut -f1))"
echo "$BIN"
