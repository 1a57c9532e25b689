"""What a hung ovs-vswitchd (SIGSTOP) costs a collection round and a scrape, as a ratio of ``--timeout``.

Every call of a round shares one deadline (ovstop/sources/deadline.py), so the ratio should stay near 1
(it was about 3 before: one timeout per source call). Also times a scrape made while a round hangs on the
switch (its ``X-Prometheus-Scrape-Timeout-Seconds`` shorter than ``--timeout``): it is answered from the
previous round's page, which states its age, without waiting for the hanging round.

Run: ``.venv/bin/python benchmarks/hung_switch.py [--timeout 2] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import time
import urllib.request

from ovstop.collect.refresher import Refresher
from ovstop.export.server import MetricsEndpoint, serve
from ovstop.runtime import Options, running
from ovstop.sandbox.switch import SandboxSwitch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scrape-timeout", type=float, default=1.0)
    args = ap.parse_args()
    with SandboxSwitch(n_ports=4) as sw:
        options = Options(unixctl=str(sw.unixctl_path), db=sw.db_remote, ebpf=False, timeout=args.timeout)
        with running(options) as rt:
            rt.first_sample()
            endpoint = MetricsEndpoint()
            # No periodic rounds; pages served up to an hour old: each scrape kicks the round it then skips.
            refresher = Refresher(rt.sampler, interval=3600, fresh=0, bound=3600)
            endpoint.attach(refresher)
            refresher.start()
            server = serve(endpoint, "127.0.0.1", 0)
            pid = int((sw.dir / "ovs-vswitchd.pid").read_text())
            os.kill(pid, signal.SIGSTOP)
            try:
                for i in range(args.rounds):
                    t0 = time.perf_counter()
                    rt.sampler.sample()
                    seconds = time.perf_counter() - t0
                    print(f"round {i}: {seconds:.2f} s = {seconds / args.timeout:.2f}x --timeout {args.timeout:g}")
                headers = {"X-Prometheus-Scrape-Timeout-Seconds": f"{args.scrape_timeout:g}"}
                request = urllib.request.Request(f"http://127.0.0.1:{server.server_port}/metrics", headers=headers)
                t0 = time.perf_counter()
                with urllib.request.urlopen(request, timeout=60) as response:
                    body = response.read().decode()
                seconds = time.perf_counter() - t0
                age = re.search(r"^ovstop_snapshot_age_seconds (\S+)$", body, re.M)
                print(
                    f"scrape with a {args.scrape_timeout:g} s scrape timeout: {seconds:.3f} s "
                    f"= {seconds / args.scrape_timeout:.3f}x the scraper's timeout; page age "
                    f"{float(age[1]) if age else float('nan'):.2f} s; round in flight: {refresher.busy_for is not None}"
                )
            finally:
                os.kill(pid, signal.SIGCONT)
                server.shutdown()
                refresher.close()


if __name__ == "__main__":
    main()
