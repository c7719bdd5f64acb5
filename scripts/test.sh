#!/usr/bin/env bash
# The project's test command (README "Run the tests"): installs the external tools the tests
# drive (Stoplight Prism, kubectl, helm) into ./.tools, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tools.sh
export TRUSTHUB_TOOLS_DIR="$PWD/.tools/bin"
cargo test --workspace --locked "$@"
