#!/usr/bin/env bash
# The project's test command (README "Run the tests"): installs the external tools the tests
# drive (Stoplight Prism, kubectl, helm, promtool; cached outside the clone, linked into
# ./.tools/bin), builds the real kube-apiserver and etcd from their Go modules (first run only;
# cached outside the clone), then runs every test of the workspace and ends with one line
# summing up all test binaries.
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
if [ "${TRUSTHUB_KUBE_BACKEND:-real}" = real ]; then
  cargo test --workspace --locked "$@" 2>&1 | tee -a "$log" || status=$?
  # The second backend: kube-local's conformance suite and the operator's e2e suite again on
  # kube-local (the playground and the benchmark run on it), without the modules that need a
  # real apiserver (RBAC, the chart installed for real).
  echo "test: the same suites on kube-local"
  TRUSTHUB_KUBE_BACKEND=kube-local cargo test --locked -p kube-local --test conformance "$@" 2>&1 | tee -a "$log" || status=$?
  TRUSTHUB_KUBE_BACKEND=kube-local cargo test --locked --test e2e "$@" -- --skip real_ 2>&1 | tee -a "$log" || status=$?
else
  cargo test --workspace --exclude testenv --locked "$@" -- --skip real_ 2>&1 | tee -a "$log" || status=$?
fi
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "all test binaries: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
