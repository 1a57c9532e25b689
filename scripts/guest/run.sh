#!/bin/sh
# Run a command in the ovstop QEMU guest (Debian's kernel, openvswitch module, kprobes, bcc).
# Usage: scripts/guest/run.sh [--timeout S] [--env K=V ...] -- CMD...
# The command runs as root in the checkout (shared at the same path); the exit code is the command's,
# 124 when the guest timed out or could not start. Build the guest first: scripts/guest/build-rootfs.sh
repo=$(cd "$(dirname "$0")/../.." && pwd)
PYTHONPATH="$repo/tests${PYTHONPATH:+:$PYTHONPATH}" exec "$repo/.venv/bin/python" -m guest.vm "$@"
