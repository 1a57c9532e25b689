"""What OVN monitoring costs: a private OVN with ``--lsps`` logical switch ports (two tenants, four logical
switches), measured for

* the memory of the NB and SB IDL replicas (RSS of this process before and after they load);
* one collection by the NB and SB collectors (median and p90 over ``--rounds``), i.e. the added cost of a
  scrape with OVN enabled;
* for comparison, the ``ovn-nbctl``/``ovn-sbctl`` calls a CLI-parsing exporter makes for the same counts.

Run: ``.venv/bin/python benchmarks/ovn_scrape.py [--lsps 1000] [--rounds 20]``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from ovstop.collect.base import Sources, Tables
from ovstop.collect.ovn import OvnNorthboundCollector, OvnSouthboundCollector
from ovstop.model.labels import LabelMap
from ovstop.sandbox.ovn import TENANTS, SandboxOvn
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sources.ovn import OvnLink
from ovstop.sources.ovsdb import OvsdbSource


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def timed(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    """(median, p90) wall seconds of ``fn`` over ``rounds`` calls."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lsps", type=int, default=1000, help="VIF logical switch ports in total")
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    per_switch = max(1, args.lsps // (2 * len(TENANTS)))
    labels = LabelMap.from_dict({"names": ["vpc"], "external_ids": {"vpc": ["vpc"]}})
    with SandboxSwitch(n_ports=1, pmd=False) as switch, SandboxOvn(switch, vifs_per_switch=per_switch) as ovn:
        n_lsp = len(ovn.nbctl("--bare", "--columns=_uuid", "list", "Logical_Switch_Port").split())
        n_pb = len(ovn.sbctl("--bare", "--columns=_uuid", "list", "Port_Binding").split())
        print(f"OVN sandbox: {n_lsp} logical switch ports, {n_pb} port bindings, started in {ovn.start_seconds:.1f}s")
        ovs = OvsdbSource(switch.db_remote)
        ovs.refresh()
        gc.collect()
        before = rss_kib()
        link = OvnLink(ovn.nb_remote, ovn.sb_remote, ovn.dir)
        link.northbound(ovs)
        link.southbound(ovs)
        gc.collect()
        print(f"NB+SB IDL replicas: RSS +{(rss_kib() - before) / 1024:.1f} MiB")
        sources = Sources(ovsdb=ovs)
        nb_c, sb_c = OvnNorthboundCollector(link, labels), OvnSouthboundCollector(link, labels)
        n_samples = len(list(nb_c.collect(sources, Tables()))) + len(list(sb_c.collect(sources, Tables())))
        med, p90 = timed(
            lambda: (list(nb_c.collect(sources, Tables())), list(sb_c.collect(sources, Tables()))), args.rounds
        )
        print(f"OVN collection (NB+SB, {n_samples} samples): median {med * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms")

        def cli() -> None:
            for table in ("Logical_Switch", "Logical_Switch_Port", "Logical_Router", "Logical_Router_Port"):
                ovn.nbctl("--format=csv", "list", table)
            for table in ("Chassis", "Chassis_Private", "Encap", "Port_Binding", "Datapath_Binding"):
                ovn.sbctl("--format=csv", "list", table)

        med, p90 = timed(cli, max(3, args.rounds // 4))
        print(
            f"same counts via ovn-nbctl/ovn-sbctl (9 processes, no parsing): median {med * 1000:.1f} ms, "
            f"p90 {p90 * 1000:.1f} ms"
        )
        link.close()
        ovs.close()


if __name__ == "__main__":
    main()
