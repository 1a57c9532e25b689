"""The exporter's HTTP server under abuse: ``wrk`` with many connections while idle sockets are held open.

Starts ``ovstop --headless --sandbox``, opens ``--idle`` TCP connections that never send a byte, runs
``wrk -c N -d S --latency`` on /metrics, and prints wrk's errors and latency percentiles, the kernel's
listen-queue overflows during the run (``nstat``), and ovstop's resident memory before, during and after.

    .venv/bin/python benchmarks/http_abuse.py                  # wrk -c 200 -d 30s, 200 idle sockets
    .venv/bin/python benchmarks/http_abuse.py -c 50 -d 10 --idle 50

Needs Debian's ``wrk`` and ``iproute2`` (nstat). Targets (issue 11): 0 errors, p99 <= 100 ms, flat memory.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match[1]) if match else 0


def listen_overflows() -> int:
    out = subprocess.run(["nstat", "-az", "TcpExtListenOverflows"], capture_output=True, text=True).stdout
    match = re.search(r"TcpExtListenOverflows\s+(\d+)", out)
    return int(match[1]) if match else -1


def ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-c", type=int, default=200, help="wrk connections (default 200)")
    p.add_argument("-d", type=int, default=30, help="wrk seconds (default 30)")
    p.add_argument("--rounds", type=int, default=1, help="wrk runs one after the other (default 1)")
    p.add_argument("--idle", type=int, default=200, help="idle sockets held open meanwhile (default 200)")
    p.add_argument("--warmup", type=int, default=65, help="seconds of light load first (default 65)")
    p.add_argument(
        "--delay",
        default="1",
        help="ovstop's -d (default 1: a round a second on ovstop's refresher thread; scrapes are answered "
        "from the newest round's page)",
    )
    args = p.parse_args()
    if shutil.which("wrk") is None:
        print("http_abuse: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 1
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ovstop",
            "--headless",
            "--sandbox",
            "--no-ebpf",
            "--listen",
            "127.0.0.1:0",
            "-d",
            args.delay,
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        if not match:
            print(f"http_abuse: ovstop did not start: {line.strip()}", file=sys.stderr)
            return 1
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep its stderr drained
        port = int(match[1])
        url = f"http://127.0.0.1:{port}/metrics"
        # Warm up until every series' history (120 rounds, ~2 rounds/s under scrapes) is full, so that memory
        # growth during the run is the server's own, not the metric store filling up.
        subprocess.run(["wrk", "-c", "10", "-d", f"{args.warmup}s", url], capture_output=True, check=True)
        rss_before = rss_kib(proc.pid)
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.idle)]
        overflows = listen_overflows()
        samples: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(1.0):
                samples.append(rss_kib(proc.pid))

        threading.Thread(target=watch, daemon=True).start()
        after_rounds = []
        for _ in range(args.rounds):  # later rounds show whether memory levels off once the threads exist
            out = subprocess.run(
                ["wrk", "-t", "2", "-c", str(args.c), "-d", f"{args.d}s", "--latency", url],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            after_rounds.append(rss_kib(proc.pid))
        stop.set()
        overflows = listen_overflows() - overflows
        # Were the idle sockets kept open the whole run? (The idle timeout, 60 s, closes them on longer runs.)
        still_open = 0
        for sock in idle:
            sock.setblocking(False)
            try:
                still_open += sock.recv(1) != b""
            except BlockingIOError:
                still_open += 1
            sock.close()
        rss_after = rss_kib(proc.pid)
        with urllib.request.urlopen(url, timeout=20) as response:
            page = response.read().decode()
        collect = re.search(r"^ovstop_collect_duration_seconds (\S+)", page, re.M)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    requests = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    print(
        f"wrk -c {args.c} -d {args.d}s x {args.rounds} (figures: the last round), {args.idle} idle sockets "
        f"held open ({still_open} still open at the end), "
        f"ovstop -d {args.delay}, /metrics {len(page) // 1024} KiB, last collection "
        f"{float(collect[1]) * 1000 if collect else float('nan'):.0f} ms"
    )
    per_second = re.search(r"Requests/sec:\s+(\S+)", out)
    print(f"  requests        {requests[1] if requests else '?'}  ({per_second[1] if per_second else '?'}/s)")
    print(f"  socket errors   {errors[1] if errors else 'none'};  non-2xx: {non2xx[1] if non2xx else 0}")
    latency = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", out, re.M)
    worst = f"  max {ms(latency[1]):.1f}" if latency else ""
    print("  latency ms      " + "  ".join(f"p{k} {ms(v):.1f}" for k, v in pct.items()) + worst)
    print(f"  listen overflows during the run: {overflows}")
    peak = max(samples, default=rss_after)
    print(f"  ovstop RSS MiB  before {rss_before / 1024:.1f}  peak {peak / 1024:.1f}  after {rss_after / 1024:.1f}")
    print("  RSS every 5 s   " + " ".join(f"{kib / 1024:.1f}" for kib in samples[::5]))
    print("  RSS after each wrk round MiB  " + " ".join(f"{kib / 1024:.1f}" for kib in after_rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
