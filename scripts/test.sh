#!/usr/bin/env bash
# The project's test command (README "Run the tests"): installs the external tools the tests
# drive (Stoplight Prism, kubectl, helm) into ./.tools, builds the real kube-apiserver and etcd
# from their Go modules (first run only; cached outside the clone), then runs every test of the
# workspace and ends with one line summing up all test binaries.
#
#   TRUSTHUB_KUBE_BACKEND=kube-local bash scripts/test.sh
#       runs without Go: every suite uses kube-local instead of the real apiserver.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tools.sh
export TRUSTHUB_TOOLS_DIR="$PWD/.tools/bin"
case "${TRUSTHUB_KUBE_BACKEND:-real}" in
  real)
    # No silent fallback: without Go or the module proxy this stops and says what to install.
    bin="$(bash scripts/build-controlplane.sh)"
    export TRUSTHUB_CONTROLPLANE_BIN="$bin"
    echo "test: real control plane from $bin"
    ;;
  kube-local)
    echo "test: TRUSTHUB_KUBE_BACKEND=kube-local: no real apiserver, every suite runs on kube-local"
    ;;
  *)
    echo "test: TRUSTHUB_KUBE_BACKEND must be real or kube-local" >&2
    exit 2
    ;;
esac
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "all test binaries: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
