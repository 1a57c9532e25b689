"""What one ``ovstop fleet`` refresh costs the Prometheus server, for a fleet of ``--hosts`` hypervisors.

Writes a synthetic history of ovstop's own series (the ones the fleet queries read) for ``--hosts``
hypervisors, ``--minutes`` long at a ``--scrape``-second interval, as OpenMetrics; turns it into TSDB blocks
with ``promtool tsdb create-blocks-from openmetrics``; starts Debian's ``prometheus`` on those blocks
(loopback, a temporary directory) and runs the fleet's queries (:func:`ovstop.remote.fleet.queries`) at the end
of the history, ``--refreshes`` times. Prints, per query and per refresh: wall time (median), the samples
Prometheus loaded (``stats=all``: totalQueryableSamples, peakSamples) and the answer size; then the wall time
of a whole refresh as ``ovstop fleet`` makes it (:meth:`Fleet.rows`: the queries concurrent, answers parsed).

Each synthetic host has what a typical hypervisor exports for these queries: one kernel datapath (hit,
missed, lost), the flow count and limit, ``--pmds`` PMD threads (busy and idle cycles), ``--ports``
interfaces (rx and tx drops), the OVN controller's SB connection, one ``ovstop_health`` verdict per health
check (about 1% of them failing), and Prometheus's ``up``.

Run: ``.venv/bin/python benchmarks/fleet_query.py [--hosts 1000] [--minutes 10] [--scrape 15]``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from ovstop import health
from ovstop.remote.fleet import Fleet, queries
from ovstop.remote.http import HttpClient

JOB = "ovstop"


def write_openmetrics(path: Path, hosts: int, points: int, step: int, end: int, pmds: int, ports: int) -> int:
    """The synthetic history as one OpenMetrics file (grouped by family, as the format requires); returns
    the number of series written."""
    rng = random.Random(1)
    start = end - (points - 1) * step
    series = 0
    with path.open("w") as out:

        def family(name: str, kind: str, labelsets: list[str], value, counter: bool = False) -> None:  # type: ignore[no-untyped-def]
            nonlocal series
            base = name.removesuffix("_total") if counter else name
            out.write(f"# TYPE {base} {kind}\n")
            for labels in labelsets:
                series += 1
                total = 0.0
                for i in range(points):
                    total = total + value() if counter else value()
                    out.write(f"{name}{{{labels}}} {total:g} {start + i * step}\n")

        inst = [f'job="{JOB}",instance="hv{h:05d}.example.net:6103"' for h in range(hosts)]
        dp = [f'{i},datapath="system@ovs-system"' for i in inst]
        family("up", "gauge", inst, lambda: 1)
        family("ovs_vswitchd_datapath_hit_total", "counter", dp, lambda: rng.randint(10_000, 100_000), True)
        family("ovs_vswitchd_datapath_missed_total", "counter", dp, lambda: rng.randint(0, 2_000), True)
        family("ovs_vswitchd_datapath_lost_total", "counter", dp, lambda: rng.randint(0, 1), True)
        family("ovs_vswitchd_upcall_flows_current", "gauge", dp, lambda: rng.randint(100, 20_000))
        family("ovs_vswitchd_upcall_flows_limit", "gauge", dp, lambda: 200_000)
        threads = [f'{d},thread="pmd-c{t:02d}",numa="0",core="{t}"' for d in dp for t in range(pmds)]
        for name in ("ovs_vswitchd_poll_threads_busy_cycles_total", "ovs_vswitchd_poll_threads_idle_cycles_total"):
            family(name, "counter", threads, lambda: rng.randint(1, 9) * 10**9, True)
        ifaces = [f'{i},bridge="br-int",interface="tap{p:03d}"' for i in inst for p in range(ports)]
        family("ovs_vswitchd_interface_rx_dropped_total", "counter", ifaces, lambda: rng.randint(0, 3), True)
        family("ovs_vswitchd_interface_tx_dropped_total", "counter", ifaces, lambda: rng.randint(0, 3), True)
        chassis = [f'{i},chassis="hv{n:05d}"' for n, i in enumerate(inst)]
        family("ovn_controller_sb_connected", "gauge", chassis, lambda: 1)
        verdicts = [f'{i},check="{c.name}"' for i in inst for c in health.CHECKS]
        family("ovstop_health", "gauge", verdicts, lambda: 0 if rng.random() < 0.01 else 1)  # ~1% failing
        out.write("# EOF\n")
    return series


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(base: str, path: str, **params: str) -> tuple[dict, int]:  # type: ignore[type-arg]
    with urllib.request.urlopen(f"{base}{path}?{urllib.parse.urlencode(params)}", timeout=120) as response:
        body = response.read()
    return json.loads(body), len(body)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--scrape", type=int, default=15, help="scrape interval of the synthetic history, seconds")
    ap.add_argument("--pmds", type=int, default=4)
    ap.add_argument("--ports", type=int, default=20)
    ap.add_argument("--window", default="1m")
    ap.add_argument("--refreshes", type=int, default=5)
    args = ap.parse_args()
    if not shutil.which("prometheus") or not shutil.which("promtool"):
        print("needs Debian's prometheus package (prometheus, promtool)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="ovstop-fleet-bench-") as d:
        tmp = Path(d)
        end = int(time.time()) - 3 * 3600  # older than the head block: promtool's blocks are then accepted as is
        points = args.minutes * 60 // args.scrape + 1
        started = time.monotonic()
        series = write_openmetrics(tmp / "fleet.om", args.hosts, points, args.scrape, end, args.pmds, args.ports)
        size = (tmp / "fleet.om").stat().st_size
        print(
            f"{args.hosts} hosts: {series} series x {points} samples ({size / 1e6:.0f} MB OpenMetrics) "
            f"written in {time.monotonic() - started:.1f}s"
        )
        started = time.monotonic()
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(tmp / "fleet.om"), str(tmp / "data")],
            check=True,
        )
        (tmp / "fleet.om").unlink()
        print(f"promtool create-blocks-from openmetrics: {time.monotonic() - started:.1f}s")
        (tmp / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
        port = free_port()
        prom = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                "--storage.tsdb.retention.time=10y",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"{base}/-/ready", timeout=5)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            exprs = queries(JOB, args.window)
            per_query: dict[str, list[float]] = {c: [] for c in exprs}
            loaded: dict[str, tuple[int, int, int, int]] = {}
            refresh: list[float] = []
            for _ in range(args.refreshes):
                total = 0.0
                for col, expr in exprs.items():
                    t0 = time.monotonic()
                    doc, nbytes = get(base, "/api/v1/query", query=expr, time=str(end), stats="all")
                    took = time.monotonic() - t0
                    assert doc["status"] == "success", doc
                    samples = doc["data"].get("stats", {}).get("samples", {})
                    loaded[col] = (
                        samples.get("totalQueryableSamples", -1),
                        samples.get("peakSamples", -1),
                        len(doc["data"]["result"]),
                        nbytes,
                    )
                    per_query[col].append(took)
                    total += took
                refresh.append(total)
            print(f"{len(exprs)} queries per refresh, window {args.window}, {args.refreshes} refreshes:")
            heads = f"{'median ms':>9} {'samples read':>12} {'peak samples':>12} {'rows':>6} {'bytes':>8}"
            print(f"  {'column':<14} {heads}")
            for col in exprs:
                read, peak, rows, nbytes = loaded[col]
                print(
                    f"  {col:<14} {statistics.median(per_query[col]) * 1e3:9.1f} {read:12d} {peak:12d} "
                    f"{rows:6d} {nbytes:8d}"
                )
            read_total = sum(v[0] for v in loaded.values())
            print(
                f"  per refresh: median {statistics.median(refresh) * 1e3:.0f} ms (queries run one after another), "
                f"{read_total} samples read, {read_total / args.hosts:.0f} per host"
            )
            fleet = Fleet(HttpClient(base, timeout=120), JOB, args.window)
            walls = []
            for _ in range(args.refreshes):
                t0 = time.monotonic()
                hosts = fleet.rows(at=end)
                walls.append(time.monotonic() - t0)
            print(
                f"  ovstop fleet refresh (queries concurrent, answers parsed): median "
                f"{statistics.median(walls) * 1e3:.0f} ms for {len(hosts)} rows"
            )
        finally:
            prom.terminate()
            prom.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
