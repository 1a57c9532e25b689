#!/usr/bin/env bash
# Set up what running ovstop needs on a Debian 12 machine: Debian packages (as root), then a virtualenv in
# .venv with ovstop (editable) and its TUI (the tui extra). The test tools are not installed here:
# scripts/test.sh installs them (scripts/test-deps.sh). Safe to run again.
#
#   scripts/setup.sh            # packages + .venv
#   scripts/setup.sh --no-apt   # only the .venv (packages already there)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/apt.sh

APT_PACKAGES=(
  openvswitch-switch          # ovsdb-server, ovs-vswitchd 3.1: the switch ovstop watches, and --sandbox's
  python3-bpfcc               # bcc (eBPF capture), Debian's build: not on PyPI
  linux-headers-amd64         # kernel headers bcc compiles against when the running kernel ships none
  python3-venv python3-pip
)

if [[ "${1:-}" != "--no-apt" ]]; then
  apt_ensure setup "${APT_PACKAGES[@]}"
  # Debian starts no switch of its own in a container without systemd; if one runs, ovstop leaves it alone.
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[tui]'
echo "setup: ready (.venv/bin/ovstop)" >&2
