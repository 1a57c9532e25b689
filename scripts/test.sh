#!/usr/bin/env bash
# The whole test suite, as CI runs it: lint (ruff, ruff format, mypy, import-linter contracts), the host tests (real sandbox switch, real HTTP, real
# terminal, eBPF compile + verifier), then the guest stage (Debian's kernel under QEMU, real OVS kernel
# hooks). Run scripts/setup.sh first (as root).
#
#   scripts/test.sh              # everything
#   scripts/test.sh --host-only  # skip the guest stage
set -euo pipefail
cd "$(dirname "$0")/.."

stage() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

stage "lint: ruff, formatting, types, layers"
.venv/bin/ruff check ovstop tests benchmarks scripts
.venv/bin/ruff format --check ovstop tests benchmarks scripts
.venv/bin/mypy
.venv/bin/lint-imports

stage "host tests"
.venv/bin/python -m pytest -m "not guest" -p no:cacheprovider

if [[ "${1:-}" != "--host-only" ]]; then
  stage "guest image"
  scripts/guest/build-rootfs.sh
  stage "guest tests"
  .venv/bin/python -m pytest -m guest -p no:cacheprovider
fi
stage "done"
