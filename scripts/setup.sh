#!/usr/bin/env bash
# Install everything ovstop needs on a Debian 12 machine: Debian packages (as root), then a virtualenv
# in .venv with ovstop installed in editable mode, with its TUI (the tui extra) and its test tools. Safe to run again.
#
#   scripts/setup.sh            # packages + .venv
#   scripts/setup.sh --no-apt   # only the .venv (packages already there)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  openvswitch-switch          # ovsdb-server, ovs-vswitchd 3.1: the sandbox switch and the tests' switch
  ovn-central ovn-host        # OVN 23.03: --sandbox --ovn and the OVN tests
  python3-bpfcc bpfcc-tools   # bcc (eBPF capture), Debian's build: not on PyPI
  linux-headers-amd64         # kernel headers for bcc when the running kernel ships none (see README)
  systemtap-sdt-dev           # <sys/sdt.h>: the USDT verifier test builds a binary with OVS's probe signatures
  gcc                         # builds that binary
  prometheus                  # promtool, to validate /metrics
  tmux                        # the end-to-end terminal test
  python3-venv python3-pip
  qemu-system-x86 mmdebstrap e2fsprogs cpio zstd   # the eBPF guest (Debian's kernel under QEMU)
)

if [[ "${1:-}" != "--no-apt" ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: run as root (apt-get install), or pass --no-apt if the packages are installed" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  packages=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || packages+=("$p"); done
  if ((${#packages[@]})); then
    echo "setup: installing ${packages[*]}" >&2
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null
  fi
  # Debian starts no switch of its own in a container without systemd; if one runs, ovstop leaves it alone.
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[tui,test]'
echo "setup: ready (.venv/bin/ovstop)" >&2
