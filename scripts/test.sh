#!/usr/bin/env bash
# The project's test command (README "Run the tests"): installs the external tools the tests
# drive (Stoplight Prism, kubectl, helm) into ./.tools, then runs every test of the workspace
# and ends with one line summing up all test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tools.sh
export TRUSTHUB_TOOLS_DIR="$PWD/.tools/bin"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "all test binaries: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
