#!/usr/bin/env bash
# Obtain the local control plane's binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok) at pinned versions, cached outside the repo by version.
#
# Official release downloads are tried first (fast where the network allows); when they fail,
# everything is built from the Go module proxy with GOTOOLCHAIN=local. Kubernetes and etcd have
# local `replace` directives, so `go install` cannot build them; a throw-away wrapper module
# re-maps every staging module to its published version (the list is derived from the
# kubernetes go.mod the proxy serves, never kept by hand).
#
# Measured (2 cores, empty bin cache, 2026-11): kwok 103 s, etcd 25 s, kube-apiserver 240 s,
# controller-manager 80 s, scheduler + kubectl 25 s: ~8 min in all. Disk: binaries 406 MB,
# Go module cache 1.9 GB (~/go/pkg/mod), Go build cache 4.5 GB (~/.cache/go-build; may be
# cleared with `go clean -cache` once the binaries exist). With the bin dir present it is instant.
#
# Usage: build-controlplane.sh            (prints the bin dir on the last line)
# Env:   PYTHONAPP_CACHE (default ~/.cache/pythonapp-operator), K8S_VERSION, ETCD_VERSION,
#        KWOK_VERSION, PYTHONAPP_NO_DOWNLOAD=1 to skip the download attempt.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
CACHE=${PYTHONAPP_CACHE:-$HOME/.cache/pythonapp-operator}
BIN="$CACHE/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
WORK="$CACHE/build"
START=$(date +%s)

say() { printf '[controlplane %4ss] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
trap 'say "ERROR: unexpected failure at line $LINENO (exit $?)"' ERR

want=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)
have_all() { for b in "${want[@]}"; do [ -x "$BIN/$b" ] || return 1; done; }

if have_all; then
  say "cached: $BIN"
  echo "$BIN"
  exit 0
fi
mkdir -p "$BIN" "$WORK"

# ---------------------------------------------------------------- 1. official downloads
arch=$(uname -m); case "$arch" in x86_64) arch=amd64;; aarch64) arch=arm64;; esac
try_download() {  # url dest; quick failure when the network refuses
  curl -fsSL --connect-timeout 5 --max-time 300 -o "$2.part" "$1" 2>/dev/null && mv "$2.part" "$2" && chmod +x "$2"
}
if [ "${PYTHONAPP_NO_DOWNLOAD:-}" != 1 ] && command -v curl >/dev/null; then
  say "trying official release downloads"
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$BIN/$b" ] || try_download "https://dl.k8s.io/release/$K8S_VERSION/bin/linux/$arch/$b" "$BIN/$b" \
      || { say "download of $b refused; will build from Go modules"; rm -f "$BIN/$b.part"; break; }
  done
  [ -x "$BIN/kwok" ] || try_download "https://github.com/kubernetes-sigs/kwok/releases/download/$KWOK_VERSION/kwok-linux-$arch" "$BIN/kwok" \
    || { say "download of kwok refused; will build"; rm -f "$BIN/kwok.part"; }
  if [ ! -x "$BIN/etcd" ]; then
    tgz="$WORK/etcd.tgz"
    if curl -fsSL --connect-timeout 5 --max-time 300 -o "$tgz" \
        "https://github.com/etcd-io/etcd/releases/download/$ETCD_VERSION/etcd-$ETCD_VERSION-linux-$arch.tar.gz" 2>/dev/null; then
      tar -xzf "$tgz" -C "$WORK" && cp "$WORK/etcd-$ETCD_VERSION-linux-$arch/etcd" "$BIN/etcd"
    else
      say "download of etcd refused; will build"
    fi
    rm -f "$tgz"
  fi
fi
if have_all; then say "done (downloaded): $BIN"; echo "$BIN"; exit 0; fi

# ---------------------------------------------------------------- 2. build from Go modules
GO_MIN=1.26  # Kubernetes 1.36's modules declare go 1.26.0
command -v go >/dev/null || die "no Go toolchain on PATH and release downloads failed. Install Go >= $GO_MIN (https://go.dev/dl; Debian's golang-go is older), put it on PATH and re-run."
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
gov=$(go env GOVERSION)
gnum=${gov#go}; gmaj=${gnum%%.*}; gmin=${gnum#*.}; gmin=${gmin%%[!0-9]*}
if [ "$gmaj" -lt 1 ] || { [ "$gmaj" -eq 1 ] && [ "${gmin:-0}" -lt "${GO_MIN#1.}" ]; }; then
  die "$gov is too old: Kubernetes $K8S_VERSION needs Go >= $GO_MIN (GOTOOLCHAIN=local, so no automatic toolchain download). Install it from https://go.dev/dl and re-run."
fi
say "building with $gov (module proxy: $(go env GOPROXY))"

# kwok: no replace directives, plain go install.
if [ ! -x "$BIN/kwok" ]; then
  say "building kwok $KWOK_VERSION"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
    || die "building kwok failed (see above)"
  # kwok v0.8 ships no built-in stages: keep the module's stage YAMLs next to the binary.
  kdir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p') || true
  [ -n "$kdir" ] || die "could not download sigs.k8s.io/kwok@$KWOK_VERSION from the module proxy"
  rm -rf "$BIN/kwok-stages"; mkdir -p "$BIN/kwok-stages"
  cp -r "$kdir/kustomize/stage/." "$BIN/kwok-stages/"; chmod -R u+w "$BIN/kwok-stages"
fi

# etcd: the server module's root is the etcd main package (etcdmain.Main). Its go.mod maps the
# sibling modules (api, client, pkg) to ../ with replaces that a dependent module ignores, so a
# throw-away wrapper pins each of them to the published version. (The repository root module
# go.etcd.io/etcd/v3 is test tooling and the proxy does not even serve every 3.6 tag of it.)
if [ ! -x "$BIN/etcd" ]; then
  say "building etcd $ETCD_VERSION"
  ew="$WORK/etcd-wrapper"; rm -rf "$ew"; mkdir -p "$ew"; cd "$ew"
  go mod init local/etcd-wrapper >/dev/null 2>&1
  ejson=$(go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION") || true
  edir=$(printf '%s\n' "$ejson" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -n "$edir" ] || die "could not download go.etcd.io/etcd/server/v3@$ETCD_VERSION from the module proxy: $(printf '%s\n' "$ejson" | sed -n 's/.*"Error": "\(.*\)".*/\1/p')"
  # Every `go.etcd.io/etcd/<x> => ../<x>` replace becomes a replace to the published version.
  for m in $(grep -E '^\s*go\.etcd\.io/etcd/[^ ]+ => \.\./' "$edir/go.mod" | awk '{print $1}' | sort -u); do
    go mod edit -replace "$m=$m@$ETCD_VERSION"
  done
  go mod edit -require "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go mod edit -go="$(sed -n 's/^go //p' "$edir/go.mod")"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
  go mod tidy >&2 || die "go mod tidy failed for the etcd wrapper"
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3 || die "building etcd failed (see above)"
  mv "$BIN/etcd.tmp" "$BIN/etcd"
  cd - >/dev/null
fi

# Kubernetes: wrapper module with a replace per staging module (derived from its go.mod).
k8s_need=0
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do [ -x "$BIN/$b" ] || k8s_need=1; done
if [ "$k8s_need" = 1 ]; then
  say "preparing Kubernetes $K8S_VERSION wrapper module"
  kw="$WORK/k8s-wrapper"; rm -rf "$kw"; mkdir -p "$kw"; cd "$kw"
  go mod init local/k8s-wrapper >/dev/null 2>&1
  kjson=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION") || true
  kdir=$(printf '%s\n' "$kjson" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -n "$kdir" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION from the module proxy"
  staging_v="v0.${K8S_VERSION#v1.}"
  mods=$(grep -E '=> \./staging/' "$kdir/go.mod" | awk '{print $1}' | sort -u)
  [ -n "$mods" ] || die "found no staging replaces in $kdir/go.mod"
  say "mapping $(echo "$mods" | wc -l) staging modules to $staging_v"
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
)
GO
  say "resolving modules (go mod tidy)"
  go mod tidy >&2 || die "go mod tidy failed for the Kubernetes wrapper"
  major=${K8S_VERSION#v}; major=${major%%.*}; minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$BIN/$b" ] && continue
    say "building $b (a cold build takes many minutes on 2 cores)"
    go build -trimpath -ldflags "$ld" -o "$BIN/$b.tmp" "k8s.io/kubernetes/cmd/$b" || die "building $b failed (see above)"
    mv "$BIN/$b.tmp" "$BIN/$b"
  done
  cd - >/dev/null
fi

have_all || die "some binaries are still missing in $BIN"
say "done: $BIN ($(du -sh "$BIN" | cut -f1))"
echo "$BIN"
