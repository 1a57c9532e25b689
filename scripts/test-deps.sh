#!/usr/bin/env bash
# The test-only tools, on top of scripts/setup.sh: Debian packages (as root) and the test extras in .venv.
# scripts/test.sh runs this first; safe to run again (it installs only what is missing).
#
#   scripts/test-deps.sh            # packages + .venv test extras
#   scripts/test-deps.sh --no-apt   # only the .venv test extras
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/apt.sh

APT_PACKAGES=(
  ovn-central ovn-host        # OVN 23.03: the OVN tests and --sandbox --ovn
  ovn-common                  # ovn-detrace: the explain test compares its answer with ovstop's
  bpftool                     # the BTF reader test compares its enums and offsets with bpftool's dump
  systemtap-sdt-dev gcc       # the USDT verifier test builds a binary with OVS's probe signatures
  prometheus                  # promtool (/metrics, rules) and the Prometheus that scrapes ovstop in a test
  tmux                        # the end-to-end terminal test
  systemd                     # systemd-analyze verify/security on the service unit (no running systemd needed)
  curl openssl iproute2       # TLS clients and certificates, ss (listen backlog) in the HTTP tests
  qemu-system-x86 mmdebstrap e2fsprogs cpio zstd   # the eBPF guest (Debian's kernel under QEMU)
  binutils xz-utils dwarves   # objcopy + xz pull the guest kernels' BTF out; pahole checks the BTF reader
  python3-netaddr             # Debian's ovs.flow (python3-openvswitch) needs it but does not depend on it:
                              # a parser test decodes with Debian 12's own ovs library
)

if [[ "${1:-}" != "--no-apt" ]]; then
  apt_ensure test-deps "${APT_PACKAGES[@]}"
fi
[[ -x .venv/bin/python ]] || { echo "test-deps: no .venv: run scripts/setup.sh first" >&2; exit 1; }
.venv/bin/pip install -q --disable-pip-version-check -e '.[tui,test]'
