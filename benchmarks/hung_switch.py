"""What a hung ovs-vswitchd (SIGSTOP) costs a collection round and a scrape, as a ratio of ``--timeout``.

Every call of a round shares one deadline (ovstop/sources/deadline.py), so the ratio should stay near 1
(it was about 3 before: one timeout per source call). Also times a scrape whose
``X-Prometheus-Scrape-Timeout-Seconds`` is shorter than ``--timeout``.

Run: ``.venv/bin/python benchmarks/hung_switch.py [--timeout 2] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
import urllib.request

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
            endpoint = MetricsEndpoint(max_age=0)
            endpoint.sampler = rt.sampler
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
                    response.read()
                seconds = time.perf_counter() - t0
                print(
                    f"scrape with a {args.scrape_timeout:g} s scrape timeout: {seconds:.2f} s "
                    f"= {seconds / args.scrape_timeout:.2f}x the scraper's timeout"
                )
            finally:
                os.kill(pid, signal.SIGCONT)
                server.shutdown()


if __name__ == "__main__":
    main()
