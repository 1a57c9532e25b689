"""Flow counts on a bridge with ``--rules`` OpenFlow rules: table stats over a kept OpenFlow 1.3 connection
(ovstop's source, O(tables)) against counting ``ovs-ofctl dump-flows`` lines (O(rules)).

Run: ``.venv/bin/python benchmarks/openflow_scrape.py [--rules 100000] [--rounds 10]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sources.openflow import OpenFlowClient


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    with SandboxSwitch(n_ports=1, pmd=False) as sw:
        path = sw.dir / "bench.flows"
        with path.open("w") as out:
            for i in range(args.rules):
                out.write(
                    f"table={i % 8},priority=100,tcp,nw_src=10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255},"
                    "tp_dst=80,actions=drop\n"
                )
        t0 = time.perf_counter()
        sw.ofctl("add-flows", "br1", str(path), timeout=600)
        print(f"loaded {args.rules} rules into br1 in {time.perf_counter() - t0:.1f}s")
        client = OpenFlowClient(sw.dir / "br1.mgmt")
        stats_times, dump_times = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            n_stats = sum(t.active_count for t in client.table_stats())
            stats_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            text = sw.ofctl("--no-stats", "dump-flows", "br1", timeout=600)
            n_dump = sum(1 for line in text.splitlines() if line.startswith(" "))
            dump_times.append(time.perf_counter() - t0)
        client.close()
        assert n_stats == n_dump, (n_stats, n_dump)
        print(f"table stats (kept connection): {n_stats} rules, median {statistics.median(stats_times) * 1000:.2f} ms")
        print(
            f"ovs-ofctl dump-flows | count:  {n_dump} rules, median {statistics.median(dump_times) * 1000:.0f} ms, "
            f"{len(text) / 1e6:.1f} MB of text per scrape"
        )


if __name__ == "__main__":
    main()
