"""Record the unixctl outputs ovstop parses from the guest's own OVS, as parser fixtures.

Run as root inside a QEMU guest (scripts/guest/run.sh -- python3 tests/guest/record_unixctl.py OUTDIR);
tests/data/unixctl/ovs-3.5 was written this way in the Debian 13 guest (see its README.md).
Two switches, one after the other:
  * the sandbox switch (ovstop.sandbox: netdev datapath, dummy-pmd ports, tunnels, a patch to br1) with a
    deterministic burst of new UDP 5-tuples: the userspace-datapath files;
  * the kernel-datapath switch of the eBPF scenario (tests/guest/kernel_switch.py) after UDP between two
    namespaces, including one connection through ct(commit,zone=5,nat): the ``*-kernel`` files.
Every command is looked up in ``list-commands`` first; ``-f json`` variants are recorded where the switch
accepts them. Prints "RECORD-OK <file>" per file and "RECORD-PASS" at the end.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kernel_switch import NAT_PORT, kernel_switch, send_udp, sh

from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator

# file name -> unixctl command and arguments
NETDEV = {
    "version.txt": ["version"],
    "list-commands.txt": ["list-commands"],
    "coverage-show.txt": ["coverage/show"],
    "memory-show.txt": ["memory/show"],
    "upcall-show.txt": ["upcall/show"],
    "dpif-show.txt": ["dpif/show"],
    "dpctl-show-s.txt": ["dpctl/show", "-s"],
    "dpctl-dump-flows-m.txt": ["dpctl/dump-flows", "-m"],
    "pmd-stats-show.txt": ["dpif-netdev/pmd-stats-show"],
    "pmd-perf-show.txt": ["dpif-netdev/pmd-perf-show"],
    "ct-stats-show.txt": ["dpctl/ct-stats-show"],
    "ct-get-nconns.txt": ["dpctl/ct-get-nconns"],
    "ct-get-maxconns.txt": ["dpctl/ct-get-maxconns"],
}
KERNEL = {
    "dpif-show-kernel.txt": ["dpif/show"],
    "dpctl-show-s-kernel.txt": ["dpctl/show", "-s"],
    "dpctl-dump-flows-m-kernel.txt": ["dpctl/dump-flows", "-m"],
    "upcall-show-kernel.txt": ["upcall/show"],
    "ct-stats-show-m-kernel.txt": ["dpctl/ct-stats-show", "-m"],
    "ct-get-nconns-kernel.txt": ["dpctl/ct-get-nconns"],
}
# recorded again with "-f json" when the switch answers it (OVS 3.4+)
JSON = {"version.txt", "list-commands.txt", "dpif-show.txt", "dpif-show-kernel.txt"}


def record(out: Path, files: dict[str, list[str]], appctl: list[str]) -> None:
    commands = {line.split()[0] for line in sh(*appctl, "list-commands").splitlines()[1:] if line.strip()}
    for name, argv in files.items():
        if argv[0] not in commands:
            print(f"RECORD-SKIP {name}: no {argv[0]} in list-commands", flush=True)
            continue
        variants = [(name, argv)]
        if name in JSON:
            variants.append((name.replace(".txt", ".json"), ["-f", "json", *argv]))
        for file, args in variants:
            done = subprocess.run([*appctl, *args], capture_output=True, text=True)
            if done.returncode == 0:
                (out / file).write_text(done.stdout)
                print(f"RECORD-OK {file}", flush=True)
            else:
                print(f"RECORD-SKIP {file}: {done.stderr.strip()}", flush=True)


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    with SandboxSwitch(n_ports=2) as switch:
        traffic = TrafficGenerator(switch, seed=1)
        traffic.inject(8, repeats=3)
        traffic.inject(4, repeats=1, port=2)
        record(out, NETDEV, ["ovs-appctl", "-t", str(switch.unixctl_path)])
        traffic.stop()
    with kernel_switch():
        send_udp(list(range(20000, 20008)), 5000, 3)
        send_udp([21000], NAT_PORT)
        record(out, KERNEL, ["ovs-appctl"])
    print("RECORD-PASS", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
