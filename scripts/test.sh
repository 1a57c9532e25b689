#!/usr/bin/env bash
# The whole test suite, as CI runs it: lint (ruff, ruff format, mypy, import-linter contracts), the host
# tests (real sandbox switch, real HTTP, real terminal, eBPF compile + verifier), then the guest stage: two
# Debian guests under QEMU, real OVS kernel hooks, the same tests on each (Debian 12: Linux 6.1 + OVS 3.1;
# Debian 13: Linux 6.12 + OVS 3.5; the Debian 12 image build also builds ovs-vswitchd with USDT probes from
# Debian's source for the USDT test). Run scripts/setup.sh first; as root, this installs the test-only tools
# itself (scripts/test-deps.sh), and builds the wheel and sdist into dist/ (a test installs that wheel into
# a fresh virtualenv).
#
#   scripts/test.sh              # everything
#   scripts/test.sh --host-only  # skip the guest stage
set -euo pipefail
cd "$(dirname "$0")/.."

stage() { printf '\n=== %s (%s)\n' "$1" "$(date +%T)"; }

stage "test tools"
scripts/test-deps.sh

stage "wheel and sdist"
rm -rf dist
if ! log=$(.venv/bin/python -m build --outdir dist . 2>&1); then echo "$log" >&2; exit 1; fi
ls dist
export OVSTOP_DIST=$PWD/dist

stage "lint: ruff, formatting, types, layers"
.venv/bin/ruff check ovstop tests benchmarks scripts
.venv/bin/ruff format --check ovstop tests benchmarks scripts
.venv/bin/mypy
.venv/bin/lint-imports

stage "host tests"
.venv/bin/python -m pytest -m "not guest" -p no:cacheprovider

if [[ "${1:-}" != "--host-only" ]]; then
  stage "guest images"
  scripts/guest/build-rootfs.sh --suite bookworm
  scripts/guest/build-rootfs.sh --suite trixie
  stage "guest tests: Debian 12 (bookworm), and both kernels' BTF against pahole"
  OVSTOP_GUEST_DIR=.guest .venv/bin/python -m pytest -m guest -p no:cacheprovider
  stage "guest tests: Debian 13 (trixie)"
  OVSTOP_GUEST_DIR=.guest-trixie .venv/bin/python -m pytest -m guest -p no:cacheprovider tests/test_guest.py
fi
stage "done"
