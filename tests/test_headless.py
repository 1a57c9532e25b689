"""``ovstop --headless`` and ``ovstop snapshot`` as installed, against a real sandbox switch.

The command runs as a subprocess (the console script), /metrics is scraped over real HTTP, validated by
promtool and prometheus-client's own parsers, and its values are compared with what ovs-appctl and
ovs-vsctl report for the same counters once traffic has stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator

OVSTOP = [sys.executable, "-m", "ovstop"]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def ovstop_env(sw: SandboxSwitch) -> dict[str, str]:
    return {**os.environ, **sw.env}


@contextmanager
def headless(sw: SandboxSwitch, *extra: str) -> Iterator[str]:
    """Run ``ovstop --headless`` on the sandbox (found through OVS_RUNDIR); yield its /metrics URL."""
    proc = subprocess.Popen(
        [*OVSTOP, "--headless", "--listen", "127.0.0.1:0", "--db", sw.db_remote, "--no-ebpf", *extra],
        env=ovstop_env(sw),
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"http://[\d.]+:(\d+)/metrics", line)
        assert match, f"no serving line; got {line!r} (rc={proc.poll()})"
        yield f"http://127.0.0.1:{match.group(1)}/metrics"
    finally:
        proc.terminate()
        rc = proc.wait(timeout=20)
        leftover = proc.stderr.read() if proc.stderr else ""
        assert rc in (0, 128 + 15, -15), f"ovstop exited {rc}: {leftover}"
        assert "Traceback" not in leftover, leftover


def scrape(url: str, accept: str | None = None) -> tuple[str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.headers["Content-Type"], response.read().decode()


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in parse_prometheus(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def pick(values: Samples, name: str, **labels: str) -> list[float]:
    want = set(labels.items())
    return [v for (n, lab), v in values.items() if n == name and want <= lab]


def test_metrics_pass_promtool_and_both_parsers(sandbox: SandboxSwitch) -> None:
    TrafficGenerator(sandbox, seed=1).inject(20, repeats=3)
    with headless(sandbox, "--max-age", "30") as url:
        ctype, text = scrape(url)
        assert ctype.startswith("text/plain")
        promtool = shutil.which("promtool")
        assert promtool, "promtool missing: scripts/setup.sh installs Debian's prometheus package"
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        families = {f.name for f in parse_prometheus(text)}
        for name in (
            "ovs_vswitchd_datapath_hit",
            "ovs_vswitchd_interface_rx_packets",
            "ovs_vswitchd_poll_threads_hit",
            "ovs_vswitchd_poll_threads_packets_per_batch",
            "ovs_vswitchd_upcall_flows_limit",
            "ovs_vswitchd_bridge_n_ports",
            "ovs_vswitchd_tunnel_up",
            "ovstop_source_up",
            "ovstop_scrape_duration_seconds",
            "ovstop_snapshot_age_seconds",
        ):
            assert name in families, name
        om_type, om_text = scrape(url, "application/openmetrics-text; version=1.0.0")
        assert om_type.startswith("application/openmetrics-text")
        assert om_text.endswith("\n# EOF\n") and om_text.count("# EOF") == 1  # after the per-scrape tail only
        om_families = {f.name: f for f in parse_openmetrics(om_text)}
        assert om_families["ovs_vswitchd_poll_threads_packets_per_batch"].type == "histogram"
        assert om_families["ovs_vswitchd_interface"].type == "info"
        assert om_families["ovstop_snapshot_age_seconds"].samples[0].value >= 0
        # gzip: the shared page compressed once, each scrape's tail compressed onto it; one whole gzip stream.
        request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=20) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            raw = response.read()
        unzipped = zlib.decompressobj(16 + zlib.MAX_WBITS)
        text = unzipped.decompress(raw).decode()
        assert unzipped.eof and not unzipped.unused_data  # a single member, complete
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


# Independent readers of the tools' text: a few regular expressions written for these tests, so that a bug in
# ovstop's own parsers cannot cancel out between what ovstop exports and what the test expects.
def dp_lookups(text: str, dp: str = "netdev@ovs-netdev") -> tuple[int, int, int]:
    """(hit, missed, lost) of ``dp`` in ``ovs-appctl dpctl/show``."""
    block = text.split(f"{dp}:\n", 1)[1]
    m = re.search(r"lookups: hit:(\d+) missed:(\d+) lost:(\d+)", block)
    assert m, block[:200]
    return int(m[1]), int(m[2]), int(m[3])


def dumped_ufids(text: str) -> list[str]:
    """The ufid of every flow line of ``ovs-appctl dpctl/dump-flows -m`` (headers are not flows)."""
    return re.findall(r"^ufid:([0-9a-f-]+),", text, re.MULTILINE)


def pmd_stats(text: str) -> dict[str, dict[str, int]]:
    """``ovs-appctl dpif-netdev/pmd-stats-show`` per PMD (``pmd-c<core>``): its integer counters by name."""
    out: dict[str, dict[str, int]] = {}
    for core, body in re.findall(r"^pmd thread numa_id \d+ core_id (\d+):\n((?:  .*\n?)*)", text, re.MULTILINE):
        out[f"pmd-c{core}"] = {k: int(v) for k, v in re.findall(r"^  ([a-z. ]+): (\d+)$", body, re.MULTILINE)}
    return out


def pmd_batch_histogram(text: str, label: str) -> list[tuple[str, int]]:
    """(upper bound, count) rows of the pkts/batch column (the fourth) of ``pmd-perf-show`` for one PMD; the
    last row's bound is ``>`` (everything above)."""
    core = label.removeprefix("pmd-c")
    section = text.split(f"core_id {core}:\n", 1)[1].split("Histograms\n", 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("-"):
            break
        cells = line.split()
        rows.append((cells[6], int(cells[7])))
    return rows


def settle(read, attempts: int = 40, pause: float = 0.5):
    """Call ``read`` until it returns the same value twice in a row (the switch has gone quiet)."""
    last = read()
    for _ in range(attempts):
        time.sleep(pause)
        now = read()
        if now == last:
            return now
        last = now
    raise AssertionError(f"value kept changing: {last}")


def test_values_equal_ovs_tools_after_traffic(fresh_sandbox: SandboxSwitch) -> None:
    sw = fresh_sandbox
    TrafficGenerator(sw, seed=7).inject(30, repeats=4)

    def dp_counters() -> tuple[int, int, int, int]:
        flows = len(dumped_ufids(sw.appctl("dpctl/dump-flows", "-m", "netdev@ovs-netdev")))
        return (*dp_lookups(sw.appctl("dpctl/show")), flows)

    hit, missed, lost, flows = settle(dp_counters)
    assert missed >= 30 and hit >= 30 * 4 - missed
    with headless(sw) as url:
        values = samples(scrape(url)[1])
        dp = {"datapath": "netdev@ovs-netdev"}
        assert pick(values, "ovs_vswitchd_datapath_hit_total", **dp) == [hit]
        assert pick(values, "ovs_vswitchd_datapath_missed_total", **dp) == [missed]
        assert pick(values, "ovs_vswitchd_datapath_lost_total", **dp) == [lost]
        assert pick(values, "ovs_vswitchd_datapath_n_flows", **dp) == [flows]  # from dpctl/show: no dump

        stats = pmd_stats(sw.appctl("dpif-netdev/pmd-stats-show"))
        perf = sw.appctl("dpif-netdev/pmd-perf-show")
        assert any(c["packets received"] for c in stats.values())
        for label, counters in stats.items():
            hits = sum(
                counters[k] for k in ("phwol hits", "simple match hits", "emc hits", "smc hits", "megaflow hits")
            )
            assert pick(values, "ovs_vswitchd_poll_threads_hit_total", thread=label) == [hits]
            assert pick(values, "ovs_vswitchd_poll_threads_packets_total", thread=label) == [
                counters["packets received"]
            ]
            rows = pmd_batch_histogram(perf, label)
            assert rows[-1][0] == ">"
            assert (sum(n for _, n in rows) > 0) == (counters["packets received"] > 0)  # batches iff packets
            cumulative = 0
            for bound, count in rows[:-1]:  # the last row is the open-ended one: +Inf
                cumulative += count
                assert pick(
                    values, "ovs_vswitchd_poll_threads_packets_per_batch_bucket", le=repr(float(bound)), thread=label
                ) == [cumulative], (label, bound)
            assert pick(values, "ovs_vswitchd_poll_threads_packets_per_batch_bucket", le="+Inf", thread=label) == [
                cumulative + rows[-1][1]
            ]

        # Interface statistics reach OVSDB every stats-update-interval (5 s at least): wait for them there.
        def vsctl_rx() -> int:
            return int(sw.vsctl("get", "Interface", "p1", "statistics:rx_packets"))

        deadline = time.monotonic() + 30
        while True:
            expected = vsctl_rx()
            got = pick(samples(scrape(url)[1]), "ovs_vswitchd_interface_rx_packets_total", interface="p1")
            if got == [expected] and expected >= 30 * 5:
                break
            assert time.monotonic() < deadline, f"/metrics p1 rx {got} vs ovs-vsctl {expected}"
            time.sleep(1)
        tx2 = int(sw.vsctl("get", "Interface", "p2", "statistics:tx_packets"))
        assert pick(samples(scrape(url)[1]), "ovs_vswitchd_interface_tx_packets_total", interface="p2") == [tx2]


def test_snapshot_matches_ovs_tools(fresh_sandbox: SandboxSwitch, tmp_path: Path) -> None:
    sw = fresh_sandbox
    TrafficGenerator(sw, seed=3).inject(12, repeats=2)
    hit, missed, _lost = dp_lookups(settle(lambda: sw.appctl("dpctl/show")))
    out = tmp_path / "snap.json"
    run = subprocess.run(
        [*OVSTOP, "snapshot", "-o", str(out), "--db", sw.db_remote, "--no-ebpf", "-d", "0.2"],
        env=ovstop_env(sw),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    doc = json.loads(out.read_text())
    assert doc["format"] == "ovstop-snapshot" and doc["version"] == 1
    assert doc["meta"]["ovs_version"] == "3.1.0"
    assert doc["meta"]["hostname"]
    assert "dpif-netdev/pmd-perf-show" in doc["meta"]["capabilities"]
    # Debian 12's OVS 3.1 lists no set-options: text on every command (3.4+ is tested in the Debian 13 guest).
    assert "set-options" not in sw.appctl("list-commands")
    assert doc["meta"]["unixctl_format"] == "text"
    assert doc["meta"]["unixctl_format_reason"] == "no set-options in list-commands (OVS < 3.4)"
    assert doc["meta"]["unixctl_formats"]["dpctl/show"] == "text"

    def value(name: str) -> float:
        (item,) = [s for s in doc["series"] if s["name"] == name and s["labels"].get("datapath") == "netdev@ovs-netdev"]
        return item["value"]

    assert value("ovs_vswitchd_datapath_hit_total") == hit
    assert value("ovs_vswitchd_datapath_missed_total") == missed
    ufids = {r["ufid"] for r in doc["tables"]["dp_flows"]}
    dumped = set(dumped_ufids(sw.appctl("dpctl/dump-flows", "-m")))
    assert ufids == dumped and len(ufids) >= 12
    # stdout mode: only JSON on stdout
    run = subprocess.run(
        [*OVSTOP, "snapshot", "--db", sw.db_remote, "--no-ebpf", "-d", "0.2"],
        env=ovstop_env(sw),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["format"] == "ovstop-snapshot"


def test_vswitchd_restart_during_headless_run(fresh_sandbox: SandboxSwitch) -> None:
    sw = fresh_sandbox
    traffic = TrafficGenerator(sw, rate_pps=300, seed=5)
    traffic.start()
    try:
        with headless(sw, "-d", "0.5") as url:

            def source_up() -> float:
                return pick(samples(scrape(url)[1]), "ovstop_source_up", source="unixctl")[0]

            assert source_up() == 1.0
            sw.kill_vswitchd()
            deadline = time.monotonic() + 20
            while source_up() != 0.0:
                assert time.monotonic() < deadline, "source_up never dropped"
                time.sleep(0.3)
            # while down, the server still answers, with OVSDB-side series still there
            text = scrape(url)[1]
            assert pick(samples(text), "ovstop_source_up", source="ovsdb") == [1.0]
            assert not pick(samples(text), "ovs_vswitchd_datapath_hit_total")
            sw.start_vswitchd()
            deadline = time.monotonic() + 30
            while source_up() != 1.0:
                assert time.monotonic() < deadline, "source_up never came back"
                time.sleep(0.3)
            assert pick(samples(scrape(url)[1]), "ovs_vswitchd_datapath_hit_total")
    finally:
        traffic.stop()


def test_restart_gives_no_negative_rates(fresh_sandbox: SandboxSwitch, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rates the tree computes across an OVS restart (counters back to zero) are never negative."""
    from ovstop.runtime import Options, running

    sw = fresh_sandbox
    for key, value in sw.env.items():
        monkeypatch.setenv(key, value)
    traffic = TrafficGenerator(sw, rate_pps=400, seed=9)
    traffic.start()
    try:
        with running(Options(unixctl=None, db=sw.db_remote, ebpf=False)) as rt:
            rates: list[float] = []
            saw_down = saw_back = False
            for step in range(24):
                if step == 6:
                    sw.kill_vswitchd()
                if step == 10:
                    sw.start_vswitchd()
                snap = rt.sampler.sample()
                up = snap.health["unixctl"].up
                saw_down |= not up
                saw_back |= saw_down and up
                rates.extend(s.rate for s in snap.series if s.rate is not None)
                time.sleep(0.4)
            assert saw_down and saw_back
            assert rates and min(rates) >= 0
            hit_rates = [s.rate for s in rt.sampler.latest.find("ovs_vswitchd_datapath_hit_total")]
            assert hit_rates and hit_rates[0] is not None
    finally:
        traffic.stop()


def page_and_tail(body: str) -> tuple[str, dict[str, float]]:
    """A /metrics answer split into the page scrapes share and the values of its per-request tail (the
    families after the snapshot's: this scrape's duration and the page's age)."""
    cut = body.index("# HELP ovstop_snapshot_age_seconds")
    cut = min(cut, body.index("# HELP ovstop_scrape_duration_seconds"))
    tail = {(f.name): f.samples[0].value for f in parse_prometheus(body[cut:])}
    return body[:cut], tail


def test_concurrent_scrapes_get_consistent_pages_from_shared_renderings(sandbox: SandboxSwitch) -> None:
    """20 clients at once while rounds keep being published: each answer is one whole page (promtool), the
    same bytes for every scrape of one round, and there are no more renderings than rounds published."""
    import threading

    from serving import serving

    from ovstop.runtime import Options, running

    with running(Options(unixctl=str(sandbox.unixctl_path), db=sandbox.db_remote, ebpf=False)) as rt:
        rt.first_sample()
        with serving(rt.sampler, interval=0.2) as (endpoint, server):
            refresher = endpoint.refresher
            assert refresher is not None
            rounds_before = refresher.rounds
            bodies: list[str] = []
            lock = threading.Lock()

            def client() -> None:
                for _ in range(5):
                    body = scrape(f"http://127.0.0.1:{server.server_port}/metrics")[1]
                    with lock:
                        bodies.append(body)

            threads = [threading.Thread(target=client) for _ in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            published = refresher.rounds - rounds_before + 1  # the first round's page, then one per round
            renders = endpoint.renders
    assert len(bodies) == 100
    pages: dict[str, list[dict[str, float]]] = {}
    for body in bodies:
        page, tail = page_and_tail(body)
        pages.setdefault(page, []).append(tail)
        assert 0 <= tail["ovstop_snapshot_age_seconds"] <= refresher.bound
    assert 1 <= len(pages) <= published
    assert renders <= published
    promtool = shutil.which("promtool")
    assert promtool
    for page in pages:
        whole = next(b for b in bodies if b.startswith(page))
        check = subprocess.run([promtool, "check", "metrics"], input=whole, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert pick(samples(page), "ovstop_source_up", source="unixctl") == [1.0]


@pytest.mark.parametrize("asked", ["gzip", "identity"])
def test_a_page_asked_for_gzipped_is_compressed_before_its_round_is_published(
    sandbox: SandboxSwitch, asked: str
) -> None:
    """Once a round's page was asked for gzipped (as Prometheus asks), the next round's page is compressed on
    the refresher's thread with its rendering, so a gzip scrape of it is answered at once on the server's
    event loop, not after a compression on a worker thread (which 20 clients at once queued behind). Only
    then: a page nobody asked for gzipped is not compressed."""
    from serving import serving

    from ovstop.export.httpd import Request, Response
    from ovstop.runtime import Options, running

    gzip_request = Request("/metrics", "", {"accept-encoding": "gzip"})
    with running(Options(unixctl=str(sandbox.unixctl_path), db=sandbox.db_remote, ebpf=False)) as rt:
        rt.first_sample()
        with serving(rt.sampler, interval=1.0) as (endpoint, server):
            refresher = endpoint.refresher
            assert refresher is not None
            http = urllib.request.Request(
                f"http://127.0.0.1:{server.server_port}/metrics", headers={"Accept-Encoding": asked}
            )

            def next_round() -> int:
                rounds = refresher.rounds
                deadline = time.monotonic() + 30
                while refresher.rounds == rounds:
                    assert time.monotonic() < deadline, "no round was published"
                    time.sleep(0.01)
                return refresher.rounds

            # Asked, a round, asked again just after it: the demand is there before the next round renders.
            for _ in range(2):
                with urllib.request.urlopen(http, timeout=30) as reply:
                    assert reply.headers.get("Content-Encoding", "identity") == asked
                rounds = next_round()
            answer = endpoint(gzip_request)
            assert refresher.rounds == rounds, "another round went by: the machine is too slow for this test"
    if asked == "identity":
        assert not isinstance(answer, Response)  # left to a worker thread, which compresses it
        return
    assert isinstance(answer, Response) and answer.status == 200
    page = zlib.decompress(answer.body, 16 + zlib.MAX_WBITS).decode()
    assert pick(samples(page), "ovstop_source_up", source="unixctl") == [1.0]
