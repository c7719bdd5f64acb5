#!/usr/bin/env bash
# The first command to run after cloning: builds and starts the playground (local Kubernetes
# API + Trust Hub simulator + the operator, one process) and shows the SHAKEN/STIR onboarding
# until everything is Ready. Extra arguments go to the playground (`--help` lists them).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=0
if ! command -v cargo >/dev/null 2>&1; then
    echo "playground: cargo not found. Install Rust (1.89 or newer) with https://rustup.rs:" >&2
    echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh" >&2
    missing=1
fi
if ! command -v cc >/dev/null 2>&1 && ! command -v clang >/dev/null 2>&1; then
    echo "playground: no C compiler found (the TLS library needs one): install gcc or clang," >&2
    echo "  e.g. sudo apt-get install build-essential   or   xcode-select --install" >&2
    missing=1
fi
if [ "$missing" -ne 0 ]; then
    exit 1
fi
if ! command -v kubectl >/dev/null 2>&1 && [ ! -x .tools/bin/kubectl ]; then
    echo "playground: kubectl is optional; to look around with it run 'bash scripts/install-tools.sh'" >&2
    echo "  (installs it into .tools/bin) or install it from https://kubernetes.io/docs/tasks/tools/" >&2
fi

exec cargo run --quiet -p trusthub-playground -- "$@"
