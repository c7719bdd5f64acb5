#!/usr/bin/env bash
# Builds the real control plane the tests run against — kube-apiserver and etcd, from the Go
# modules pinned in tests/controlplane/ — into a cache outside the clone, keyed by the pinned
# versions and the wrapper modules' go.sum, so a fresh clone reuses the binaries. Does nothing when
# they are already built. Prints the directory holding them on its last line.
#
#   TRUSTHUB_CONTROLPLANE_CACHE  where to build (default: ${XDG_CACHE_HOME:-~/.cache}/trusthub-operator/controlplane)
#
# Needs Go (the version in tests/controlplane/*/go.mod) and the Go module proxy. Without them it
# stops and says what to install; it never falls back to anything else.
set -euo pipefail
cd "$(dirname "$0")/.."
src="$PWD/tests/controlplane"
# shellcheck source=../tests/controlplane/versions.env
. "$src/versions.env"

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
build-controlplane: Go is not installed. The tests build a real kube-apiserver $KUBERNETES_VERSION
and etcd $ETCD_VERSION from their Go modules: install Go $(sed -n 's/^go //p' "$src/kube-apiserver/go.mod") or newer
(https://go.dev/doc/install; on Debian: apt-get install golang-go if it is new enough) and make
sure the Go module proxy is reachable. To run only the suites that need no real apiserver:
TRUSTHUB_KUBE_BACKEND=kube-local bash scripts/test.sh
MSG
  exit 1
fi

key="$(cat "$src/versions.env" "$src"/*/go.mod "$src"/*/go.sum | sha256sum | cut -c1-12)"
cache_root="${TRUSTHUB_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trusthub-operator/controlplane}"
out="$cache_root/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-$key"
if [ -x "$out/kube-apiserver" ] && [ -x "$out/etcd" ] && [ -e "$out/.complete" ]; then
  echo "build-controlplane: cached in $out" >&2
  echo "$out"
  exit 0
fi

export GOWORK=off GOFLAGS="-mod=readonly" CGO_ENABLED=0 GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
mkdir -p "$cache_root"
probe="$cache_root/download.log"
if ! (cd "$src/kube-apiserver" && go mod download) >"$probe" 2>&1 ||
  ! (cd "$src/etcd" && go mod download) >>"$probe" 2>&1; then
  cat "$probe" >&2
  echo "build-controlplane: could not download the modules of k8s.io/kubernetes@$KUBERNETES_VERSION and etcd $ETCD_VERSION" >&2
  echo "from the Go module proxy ($(go env GOPROXY)). It must be reachable (or the modules in $(go env GOMODCACHE))." >&2
  exit 1
fi
rm -f "$probe"

tmp="$out.tmp.$$"
rm -rf "$tmp" && mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
started=$(date +%s)
minor="${KUBERNETES_VERSION#v1.}"
minor="${minor%%.*}"
v=k8s.io/component-base/version
ldflags="-s -w -X $v.gitVersion=$KUBERNETES_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor"
ldflags="$ldflags -X $v.gitTreeState=clean -X $v.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "build-controlplane: building kube-apiserver $KUBERNETES_VERSION (first run only; several minutes)" >&2
(cd "$src/kube-apiserver" && go build -trimpath -ldflags "$ldflags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
echo "build-controlplane: building etcd $ETCD_VERSION" >&2
(cd "$src/etcd" && go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3)
"$tmp/kube-apiserver" --version >&2
"$tmp/etcd" --version | head -n1 >&2
touch "$tmp/.complete"
rm -rf "$out" && mkdir -p "$cache_root" && mv "$tmp" "$out"
trap - EXIT
echo "build-controlplane: built in $(( $(date +%s) - started ))s into $out" >&2
echo "$out"
