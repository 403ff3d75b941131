#!/usr/bin/env bash
# Builds kube-apiserver for the end-to-end tests from the separate module in
# apiserver/ (k8s.io/kubernetes at a release, every staging module pinned to
# the matching v0.x release), into a cache keyed by that module's go.mod and
# go.sum, and prints the binary's path. A cached binary is reused as is.
#
#   examples/e2e/build-apiserver.sh          # build if needed, print the path
#
# Cache: ${PALISADE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/palisade-e2e}/kube-apiserver-<key>
# where <key> is the first 16 hex digits of sha256(go.mod followed by go.sum).
# The Go harness (examples/e2e/cluster) computes the same path.
#
# The build needs the Go module proxy and takes several minutes on 2 cores.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mod="$here/apiserver"

key="$(cat "$mod/go.mod" "$mod/go.sum" | sha256sum | cut -c1-16)"
cache="${PALISADE_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/palisade-e2e}"
bin="$cache/kube-apiserver-$key"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache"
tmp="$(mktemp "$cache/.kube-apiserver-$key.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
start=$(date +%s)
(
  cd "$mod"
  # k8s.io/kubernetes v1.37 declares go 1.26.0, which the Go here satisfies;
  # should a future pin need a newer toolchain, set GOTOOLCHAIN (e.g.
  # GOTOOLCHAIN=go1.27.3) in the environment before calling this script.
  # The release goes into the binary's version (/version, --version), as
  # Kubernetes' own build does.
  ver="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3; exit }
             $1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' go.mod)"
  [ -n "$ver" ] || { echo "no k8s.io/kubernetes requirement in $mod/go.mod" >&2; exit 1; }
  minor="$(echo "$ver" | cut -d. -f2)"
  pkg=k8s.io/component-base/version
  GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w -X $pkg.gitVersion=$ver -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
    -o "$tmp" k8s.io/kubernetes/cmd/kube-apiserver
)
chmod 0755 "$tmp"
mv -f "$tmp" "$bin"
trap - EXIT
echo "built kube-apiserver in $(( $(date +%s) - start ))s: $bin ($(du -h "$bin" | cut -f1))" >&2
echo "$bin"
