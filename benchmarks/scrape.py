"""How fast ovstop collects and serves a big switch, against the raw socket cost and against shelling out.

Starts a sandbox switch with ``--ports`` dummy ports and ``--flows`` live datapath flows, then measures:

* a full collection (``Sampler.sample()``), median and p90 over ``--rounds``, with a per-collector breakdown;
* ``/metrics`` latency (p50/p99) under ``wrk`` with ``--clients`` connections on the real server (rounds on
  a refresher thread every second, as ``--headless -d 1``), gzip as Prometheus asks and uncompressed, its
  size and the age of the data served (needs Debian's ``wrk``);
* (a) the same requests a round makes, issued bare: the recorded unixctl commands (same args) as JSON-RPC on
  a raw socket, the OVSDB read as one ``transact`` of ``select``s of the same columns, the OpenFlow table
  stats on kept connections. Replies are only framed (``json`` of the envelope), not interpreted;
* (b) one ``ovs-appctl`` / ``ovs-vsctl --format=json list`` / ``ovs-ofctl dump-tables`` process per
  request, the method other exporters use (process time only: their parsing is not counted).

Each side is timed twice: wall time, and the observer's CPU (ovstop: the CPU of the thread running the
round, parsing, store and snapshot included; raw sockets: that thread's CPU for the framing; one process
per request: the children's CPU plus that thread's for starting them; the sandbox's traffic generator is
another thread, not counted). The switch's CPU while it answers
(ovs-vswitchd without its busy-polling pmd threads, plus ovsdb-server) is printed beside each, since
answering costs the switch too. The ``/metrics`` clients run in a separate process, as Prometheus does.

Run: ``.venv/bin/python benchmarks/scrape.py [--ports 1000] [--flows 10000] [--pps 0] [--rounds 10]
[--clients 20] [--warmup 10]``. The first collection is ``Runtime.first_sample()`` followed by
``serve_rounds()``, as ``--headless`` starts, then ``--warmup`` untimed rounds a second apart (the series that
appear once OVS can tell an rxq's usage are placed then): the store is lazy (a round's cost follows what
changed, so a quiet switch and one with ``--pps`` traffic are worth measuring both) and the cycle collector is
paced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ovstop.collect.base import Collector, Parts, Sources, Tables
from ovstop.collect.demand import EVERYTHING, METRICS
from ovstop.collect.refresher import Refresher
from ovstop.errors import OvstopError
from ovstop.export.server import MetricsEndpoint, serve
from ovstop.model.metric import MetricSpec, Sample
from ovstop.runtime import Options, Runtime, running
from ovstop.sandbox.session import SandboxSession
from ovstop.sources.openflow import OpenFlowClient

Call = tuple[str, tuple[str, ...]]
MEASURED_SOURCES = ("unixctl", "ovsdb", "openflow")  # what the baselines re-issue; others are optional


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


# -- instrumenting a real round -------------------------------------------------------------------------
@dataclass
class TimedCollector:
    """Wraps a collector to add its time to ``spent`` (the sampler drains ``collect`` fully anyway)."""

    inner: Collector
    spent: dict[str, list[float]]
    name: str = field(init=False)
    source: str = field(init=False)
    specs: tuple[MetricSpec, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.name, self.source, self.specs = self.inner.name, self.inner.source, self.inner.specs

    def collect(self, sources: Sources, tables: Tables) -> Iterable[Sample]:
        started = time.perf_counter()
        try:
            got = self.inner.collect(sources, tables)
            # The same list (or Parts) as last round stays the same one; a generator is drained here, to be timed.
            return got if type(got) in (list, Parts) else list(got)
        finally:
            self.spent.setdefault(self.name, []).append(time.perf_counter() - started)


def timed(fn: Callable[..., Any], name: str, spent: dict[str, list[float]]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args)
        finally:
            spent.setdefault(name, []).append(time.perf_counter() - started)

    return wrapper


def record_calls(rt: Runtime) -> list[Call]:
    """The unixctl requests one round makes, in order (one extra round, recorded)."""
    client = rt.sources.unixctl
    assert client is not None
    calls: list[Call] = []
    real = client.call

    def recording(command: str, *args: str) -> str:
        calls.append((command, args))
        return real(command, *args)

    client.call = recording  # type: ignore[method-assign]
    try:
        rt.sampler.sample()
    finally:
        del client.call  # back to the class's method
    return calls


# -- (a) the same requests, bare -------------------------------------------------------------------------
class RawJsonRpc:
    """JSON-RPC on a plain unix socket: write the request, read until the reply is one whole JSON value."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.ids = 0
        self.decoder = json.JSONDecoder()

    def call(self, method: str, params: list[Any]) -> int:
        """Send one request; return the reply's size in bytes."""
        self.ids += 1
        self.sock.sendall(json.dumps({"id": self.ids, "method": method, "params": params}).encode())
        buf = bytearray()
        while True:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise OvstopError(f"raw JSON-RPC: connection closed during {method!r}")
            buf += chunk
            if buf.rstrip().endswith(b"}"):
                try:
                    self.decoder.raw_decode(buf.decode())
                except json.JSONDecodeError:
                    continue
                return len(buf)

    def close(self) -> None:
        self.sock.close()


def ovsdb_selects(rt: Runtime) -> list[Any]:
    """One OVSDB ``transact`` reading every column the replica monitors."""
    db = rt.sources.ovsdb
    assert db is not None
    ops = [{"op": "select", "table": t, "where": [], "columns": list(cols)} for t, cols in db.columns.items()]
    return [db.database, *ops]


@dataclass
class RawRound:
    unixctl: RawJsonRpc
    ovsdb: RawJsonRpc
    openflow: list[OpenFlowClient]
    calls: list[Call]
    transact: list[Any]

    def run(self) -> None:
        for command, args in self.calls:
            self.unixctl.call(command, list(args))
        self.ovsdb.call("transact", self.transact)
        for client in self.openflow:
            client.table_stats()

    def close(self) -> None:
        self.unixctl.close()
        self.ovsdb.close()
        for client in self.openflow:
            client.close()


# -- (b) one process per request -------------------------------------------------------------------------
def subprocess_commands(session: SandboxSession, rt: Runtime, calls: list[Call]) -> list[list[str]]:
    sw = session.switch
    appctl = [["ovs-appctl", "-t", str(sw.unixctl_path), command, *args] for command, args in calls]
    db = rt.sources.ovsdb
    assert db is not None
    vsctl = [
        ["ovs-vsctl", f"--db={sw.db_remote}", "--format=json", f"--columns={','.join(cols)}", "list", table]
        for table, cols in db.columns.items()
    ]
    ofctl = [["ovs-ofctl", "-O", "OpenFlow13", "dump-tables", br] for br in sw.bridges]
    return appctl + vsctl + ofctl


def run_processes(commands: list[list[str]], env: dict[str, str]) -> None:
    for argv in commands:
        res = subprocess.run(argv, env=env, capture_output=True, timeout=60)
        if res.returncode != 0:
            raise OvstopError(f"{' '.join(argv[:4])}: {res.stderr.decode(errors='replace').strip()[:200]}")


# -- the switch ------------------------------------------------------------------------------------------
def dp_flow_count(session: SandboxSession) -> int:
    return sum(
        1
        for line in session.switch.appctl("dpctl/dump-flows", timeout=60).splitlines()
        if line.strip() and not line.startswith("flow-dump")
    )


def fill_flows(session: SandboxSession, n_flows: int) -> int:
    """Make ``n_flows`` datapath flows that outlive the run; return how many the datapath holds."""
    session.switch.vsctl("set", "Open_vSwitch", ".", "other_config:max-idle=3600000")
    have = dp_flow_count(session)
    # A loaded host makes revalidator dumps slow, and OVS then lowers its flow limit and evicts flows.
    for _ in range(3):
        if have >= n_flows:
            break
        session.traffic.inject(n_flows - have)
        have = dp_flow_count(session)
    return have


# -- /metrics under load ---------------------------------------------------------------------------------
@dataclass
class ScrapeResult:
    requests: int
    seconds: float
    errors: str
    """wrk's error lines (non-2xx answers, socket errors), empty when there were none."""
    percentiles: dict[str, float]
    """wrk's latency distribution: "50%" … "99%" to seconds."""
    size: int
    ages: list[float]
    """``ovstop_snapshot_age_seconds`` of the prober's answers: how old the data served was."""
    rounds: int
    renders: int
    loop_late: list[float]
    """How late the server's event loop ran a callback asked for every 2 ms during the load (seconds): what
    of wrk's latency the server's own thread can account for."""


class LoopLateness:
    """Asks ``loop`` to run a callback every ``period`` s and keeps how late each one ran."""

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float = 0.002) -> None:
        self.loop, self.period = loop, period
        self.late: list[float] = []
        self._stopped = False
        loop.call_soon_threadsafe(self._tick, time.perf_counter())

    def _tick(self, due: float) -> None:
        self.late.append(max(0.0, time.perf_counter() - due))
        if not self._stopped:
            self.loop.call_later(self.period, self._tick, time.perf_counter() + self.period)

    def stop(self) -> list[float]:
        self._stopped = True
        return self.late


def wrk_seconds(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def probe_ages(url: str, seconds: float) -> dict[str, Any]:
    """Scrape ``url`` four times a second for ``seconds`` (run in a process of its own): the page size and
    the age of the data in each answer."""
    ages: list[float] = []
    size = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=30) as reply:
            body = reply.read()
        size = max(size, len(body))
        age = re.search(rb"^ovstop_snapshot_age_seconds (\S+)$", body, re.M)
        ages.append(float(age[1]) if age else float("nan"))
        time.sleep(0.25)
    return {"ages": ages, "size": size}


def scrape_load(rt: Runtime, clients: int, seconds: float, gzipped: bool) -> ScrapeResult:
    """The real server with rounds every second, under ``wrk -c clients`` (a separate process written in C,
    as Prometheus is a separate process: clients in this process would compete with the server and the
    round for the interpreter lock, and a Python client saturates its own core first) and a slow prober
    (another process) reading the age of the data."""
    endpoint = MetricsEndpoint()
    refresher = Refresher(rt.sampler, interval=1.0)  # what `--headless -d 1` runs
    endpoint.attach(refresher)
    refresher.start()
    server = serve(endpoint, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    seq0 = rt.sampler.latest.seq if rt.sampler.latest else 0
    wrk = ["wrk", "-t2", f"-c{clients}", f"-d{seconds:g}s", "--latency", url]
    prober = [sys.executable, __file__, "--probe", url, "--scrape-seconds", str(seconds)]
    lateness = LoopLateness(server.loop)
    try:
        with subprocess.Popen(prober, stdout=subprocess.PIPE, text=True) as probing:
            load = subprocess.run(
                wrk + (["-H", "Accept-Encoding: gzip"] if gzipped else []),
                capture_output=True,
                text=True,
                timeout=seconds + 60,
            )
            probed, _ = probing.communicate(timeout=60)
    finally:
        loop_late = lateness.stop()
        server.shutdown()
        server.server_close()
        refresher.close()
    if load.returncode != 0 or probing.returncode != 0:
        raise OvstopError(f"the scrape load failed: {load.stderr.strip()[-300:]}")
    seq1 = rt.sampler.latest.seq if rt.sampler.latest else 0
    out = load.stdout
    requests = re.search(r"^\s*(\d+) requests in ([\d.]+\w+)", out, re.M)
    if requests is None:
        raise OvstopError(f"wrk printed no request count: {out.strip()[-300:]}")
    percentiles = {q: wrk_seconds(v) for q, v in re.findall(r"^\s+(\d+%)\s+([\d.]+\w+)$", out, re.M)}
    errors = "; ".join(line.strip() for line in out.splitlines() if re.match(r"\s*(Non-2xx|Socket errors)", line))
    got = json.loads(probed)
    return ScrapeResult(
        int(requests[1]),
        wrk_seconds(requests[2]),
        errors,
        percentiles,
        got["size"],
        got["ages"],
        seq1 - seq0,
        endpoint.renders,
        loop_late,
    )


# -- measuring -------------------------------------------------------------------------------------------
@dataclass
class Timing:
    """Per-round wall time, observer CPU and switch CPU (seconds) of one way of making a round's requests."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    switch_cpu: list[float] = field(default_factory=list)


def own_cpu() -> float:
    """This thread's CPU (where every side's round runs; not the sandbox's traffic thread) plus that of the
    waited-for children (the processes of method (b))."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.thread_time() + children.ru_utime + children.ru_stime


def daemon_cpu(session: SandboxSession) -> float:
    """CPU seconds of the switch's daemons, without ovs-vswitchd's pmd threads (they busy-poll regardless)."""
    total = 0.0
    for daemon in ("ovs-vswitchd", "ovsdb-server"):
        try:
            pid = int((session.switch.dir / f"{daemon}.pid").read_text().strip())
        except (OSError, ValueError) as exc:
            raise OvstopError(f"no pid for the sandbox's {daemon}: {exc}") from exc
        for task in Path(f"/proc/{pid}/task").iterdir():
            stat = (task / "stat").read_text()
            if stat[stat.index("(") + 1 :].startswith("pmd"):
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def repeat(fn: Callable[[], Any], rounds: int, session: SandboxSession, every: float = 0.0) -> Timing:
    """``rounds`` calls of ``fn``, started ``every`` seconds apart (0: back to back)."""
    out = Timing()
    for _ in range(rounds):
        started = time.perf_counter()
        wall, cpu, switch = started, own_cpu(), daemon_cpu(session)
        fn()
        out.wall.append(time.perf_counter() - wall)
        out.cpu.append(own_cpu() - cpu)
        out.switch_cpu.append(daemon_cpu(session) - switch)
        time.sleep(max(0.0, started + every - time.perf_counter()))
    return out


def report_row(label: str, values: list[float], extra: str = "") -> str:
    return f"  {label:<42}{ms(statistics.median(values))}{ms(quantile(values, 0.9))}  {extra}"


def benchmark(args: argparse.Namespace) -> Iterator[str]:
    options = Options(sandbox=True, sandbox_ports=args.ports, traffic_pps=args.pps, ebpf=False)
    t0 = time.monotonic()
    with running(options) as rt:
        session: SandboxSession | None = rt.sandbox
        if session is None:
            raise OvstopError("the runtime started no sandbox")
        yield (
            f"sandbox: {args.ports} ports started in {time.monotonic() - t0:.1f}s; traffic "
            + (f"{args.pps:g} packets/s over random ports" if args.pps else "none (a quiet switch)")
        )
        t1 = time.monotonic()
        n_flows = fill_flows(session, args.flows)
        yield (
            f"datapath flows: `ovs-appctl dpctl/dump-flows | wc -l` = {n_flows} "
            f"(wanted >= {args.flows}; filled in {time.monotonic() - t1:.1f}s)"
        )
        if n_flows < args.flows:
            raise OvstopError(f"only {n_flows} datapath flows, wanted {args.flows}")

        spent: dict[str, list[float]] = {}
        sampler = rt.sampler
        # What ``ovstop --headless`` asks for (no flow dump: /metrics has no per-flow series), unless
        # --everything (what ``snapshot`` and ``--record`` ask for). The baselines re-issue the same requests.
        sampler.need("bench", EVERYTHING if args.everything else METRICS)
        yield f"demand: {'everything (snapshot/record)' if args.everything else 'what /metrics exports (headless)'}"
        sampler.collectors = [TimedCollector(c, spent) for c in sampler.collectors]
        db = rt.sources.ovsdb
        assert db is not None
        db.refresh = timed(db.refresh, "(ovsdb refresh)", spent)  # type: ignore[method-assign]
        t2 = time.perf_counter()
        first = rt.first_sample()  # as --headless starts, cycle collector pacing included
        rt.serve_rounds()
        yield (
            f"first (cold) collection: {ms(time.perf_counter() - t2).strip()}; {len(first.series)} series, "
            f"{len(first.tables.get('dp_flows', []))} flow rows"
        )
        # Startup is not what a resident exporter costs: OVS reports an rxq's usage only once a measurement
        # interval is behind it, and the ~30 series that appear then are placed in the tree once.
        repeat(sampler.sample, args.warmup, session, every=1.0)
        calls = record_calls(rt)
        spent.clear()
        # A second apart, as ``--headless -d 1`` runs them: what changed between rounds (OVSDB sends the
        # interfaces' statistics every 5 s) is what a round costs, so back to back would flatter it.
        warm = repeat(sampler.sample, args.rounds, session, every=1.0)
        snap = sampler.latest
        assert snap is not None
        for h in snap.health.values():
            if not h.up and h.name in MEASURED_SOURCES:
                raise OvstopError(f"source {h.name} failed during the benchmark: {h.reason}")
            if h.reason:
                yield f"note: source {h.name} ({'off' if h.off else 'up' if h.up else 'down'}): {h.reason}"

        raw = RawRound(
            RawJsonRpc(str(session.switch.unixctl_path)),
            RawJsonRpc(session.switch.db_remote.removeprefix("unix:")),
            [OpenFlowClient(Path(session.switch.unixctl_path).parent / f"{b}.mgmt") for b in session.switch.bridges],
            calls,
            ovsdb_selects(rt),
        )
        try:
            raw.run()  # connect and warm up
            raw_times = repeat(raw.run, args.rounds, session)
        finally:
            raw.close()
        commands = subprocess_commands(session, rt, calls)
        env = {**os.environ, **session.switch.env}
        sub_rounds = max(1, min(args.rounds, 3))
        sub_times = repeat(lambda: run_processes(commands, env), sub_rounds, session)

        scrapes = {
            encoding: scrape_load(rt, args.clients, args.scrape_seconds, encoding == "gzip")
            for encoding in ("gzip", "identity")
        }

    yield ""
    yield f"one round = {len(calls)} unixctl requests ({', '.join(sorted({c for c, _ in calls}))}),"
    yield f"            1 OVSDB read ({', '.join(db.columns)}), {len(session.switch.bridges)} OpenFlow table-stats"
    yield ""
    heading = f"  {'full collection (sampler.sample()), wall':<42}{'median':>12}{'p90':>12}"
    yield f"{heading}   [{args.rounds} warm rounds, 1 s apart]"
    yield report_row("ovstop", warm.wall, f"{len(snap.series)} series")
    for name, values in spent.items():
        yield report_row(f"  {name}", values)
    accounted = [sum(v[i] for v in spent.values()) for i in range(len(warm.wall))]
    rest = [w - a for w, a in zip(warm.wall, accounted, strict=True)]
    yield report_row("  (store, rates, snapshot: the rest)", rest)
    yield report_row("(a) same requests, raw sockets", raw_times.wall)
    yield report_row(f"(b) one process per request ({len(commands)})", sub_times.wall, f"[{sub_rounds} rounds]")
    yield ""
    # The mean as well: a round's cost follows what changed, and OVSDB's statistics arrive every 5 s.
    yield f"  {'CPU per round (median)':<42}{'observer':>12}{'switch':>12}{'observer mean':>16}"
    for label, timing in (("ovstop", warm), ("(a) raw sockets", raw_times), ("(b) one process per request", sub_times)):
        yield (
            f"  {label:<42}{ms(statistics.median(timing.cpu))}{ms(statistics.median(timing.switch_cpu))}"
            f"    {ms(statistics.mean(timing.cpu))}"
        )
    yield ""
    ratios = (
        ("ovstop / raw, wall", statistics.median(warm.wall) / statistics.median(raw_times.wall), "<=", 1.5),
        ("subprocess / ovstop, wall", statistics.median(sub_times.wall) / statistics.median(warm.wall), ">=", 10),
        ("subprocess / ovstop, observer CPU", statistics.median(sub_times.cpu) / statistics.median(warm.cpu), ">=", 10),
        ("the same, means", statistics.mean(sub_times.cpu) / statistics.mean(warm.cpu), ">=", 10),
    )
    for label, ratio, sense, aim in ratios:
        ok = ratio <= aim if sense == "<=" else ratio >= aim
        yield f"  {label:<36}= {ratio:6.2f}x   (aim {sense} {aim}x)  {'ok' if ok else 'MISSED'}"
    yield ""
    for encoding, scrape in scrapes.items():
        asked = "gzip, as Prometheus asks" if encoding == "gzip" else "uncompressed"
        yield (
            f"/metrics under wrk -c {args.clients} ({asked}): {scrape.requests} scrapes in {scrape.seconds:.1f}s "
            f"({scrape.requests / scrape.seconds:.0f}/s), {scrape.rounds} collections, "
            f"{scrape.renders} renderings shared, errors: {scrape.errors or 'none'}"
        )
        yield "  latency " + ", ".join(f"p{q.rstrip('%')} {ms(v).strip()}" for q, v in scrape.percentiles.items())
        late_p99, late_max = ms(quantile(scrape.loop_late, 0.99)).strip(), ms(max(scrape.loop_late)).strip()
        yield (
            f"  the server's event loop ran its 2 ms callback late by p99 {late_p99}, max {late_max} "
            "(wrk's latency beyond that is outside the server's thread)"
        )
        yield (
            f"  page {scrape.size / 1024:.0f} KiB uncompressed; age of the data served: p50 "
            f"{ms(quantile(scrape.ages, 0.5)).strip()}, max {ms(max(scrape.ages)).strip()} "
            "(never above the bound, 2 x (interval + --timeout))"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--ports", type=int, default=1000, help="dummy ports on br0 (default 1000)")
    p.add_argument("--flows", type=int, default=10_000, help="live datapath flows (default 10000)")
    p.add_argument(
        "--everything",
        action="store_true",
        help="collect everything (as snapshot/--record do) instead of what /metrics exports",
    )
    p.add_argument(
        "--pps",
        type=float,
        default=0.0,
        help="sandbox traffic during the run, packets/s over random ports (default 0: a quiet switch)",
    )
    p.add_argument("--rounds", type=int, default=10, help="collections to time (default 10)")
    p.add_argument("--warmup", type=int, default=10, help="collections 1 s apart before timing, not timed (default 10)")
    p.add_argument("--clients", type=int, default=20, help="concurrent /metrics clients (default 20)")
    p.add_argument("--scrape-seconds", type=float, default=10.0, help="length of the scrape test (default 10)")
    p.add_argument("--probe", metavar="URL", help=argparse.SUPPRESS)  # the age prober of the scrape test
    args = p.parse_args(argv)
    if args.probe:
        print(json.dumps(probe_ages(args.probe, args.scrape_seconds)))
        return 0
    if shutil.which("wrk") is None:
        p.error("the /metrics load needs wrk (apt-get install wrk)")
    if min(args.ports, args.rounds, args.clients) < 1 or min(args.flows, args.pps) < 0:
        p.error("--ports, --rounds and --clients must be positive, --flows and --pps not negative")
    try:
        for line in benchmark(args):
            print(line, flush=True)
    except OvstopError as exc:
        print(f"scrape benchmark: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
