"""contrib/: rules and dashboard equal what the generator makes from the metric specs, promtool accepts and
unit-tests the rules, and a real Prometheus scraping ``ovstop --headless --sandbox --ovn`` answers every rule
and dashboard query with data, with rate() agreeing with ovstop's own rates."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ovstop.export import mixin
from ovstop.model.metric import Kind

ROOT = Path(__file__).resolve().parents[1]
CONTRIB = ROOT / "contrib"
needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="needs Debian's prometheus package (scripts/test.sh installs it)",
)


def test_committed_files_are_the_generated_ones() -> None:
    for rel, text in mixin.rendered().items():
        assert (CONTRIB / rel).read_text() == text, f"contrib/{rel} is stale: run python -m ovstop.export.mixin"


def test_every_metric_name_in_contrib_is_a_declared_spec() -> None:
    rules = yaml.safe_load((CONTRIB / mixin.RULES_FILE).read_text())
    board = json.loads((CONTRIB / mixin.DASHBOARD_FILE).read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    exprs += [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    names = {re.sub(r"_bucket$", "", n) for e in exprs for n in re.findall(r"\b(?:ovs_vswitchd|ovn|ovstop)_\w+", e)}
    assert names and names <= set(mixin.catalog()), names - set(mixin.catalog())
    heatmaps = {t["expr"] for p in board["panels"] if p["type"] == "heatmap" for t in p["targets"]}
    histograms = [s.name for s in mixin.catalog().values() if s.kind is Kind.HISTOGRAM]
    assert len(histograms) == len(heatmaps) and all(any(h + "_bucket" in e for e in heatmaps) for h in histograms)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert "instance" in variables["instance"]["definition"]  # the hypervisor selector
    for rule in rules["groups"][1]["rules"]:
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook"], rule["alert"]


@needs_prometheus
def test_promtool_checks_and_unit_tests_the_rules() -> None:
    check = subprocess.run(
        ["promtool", "check", "rules", mixin.RULES_FILE], cwd=CONTRIB, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(mixin.RECORDING) + len(mixin.ALERTS)} rules found" in check.stdout
    unit = subprocess.run(
        ["promtool", "test", "rules", mixin.RULES_TEST_FILE], cwd=CONTRIB, capture_output=True, text=True
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr
    # Each alert has one firing and one healthy case.
    cases = yaml.safe_load((CONTRIB / mixin.RULES_TEST_FILE).read_text())["tests"]
    assert sorted(c["alert_rule_test"][0]["alertname"] for c in cases) == sorted([a.name for a in mixin.ALERTS] * 2)


# --- a real Prometheus ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check, what: str, deadline: float = 120.0, detail: object = None):  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < end, f"timed out waiting for {what}: {detail}"
        time.sleep(0.5)


class PromApi:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: str) -> dict:  # type: ignore[type-arg]
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=20) as response:
            doc = json.load(response)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict]:  # type: ignore[type-arg]
        return self.get("/api/v1/query", query=expr)["result"]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/-/ready", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False


def start_prometheus(tmp: Path, config: dict) -> tuple[subprocess.Popen[bytes], PromApi]:  # type: ignore[type-arg]
    """Prometheus on a free loopback port with ``config`` and its storage under ``tmp``, once it is ready."""
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = PromApi(port)
    try:
        wait_for(api.ready, "prometheus ready")
    except BaseException:
        prometheus.terminate()
        prometheus.wait(timeout=30)
        raise
    return prometheus, api


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PromApi, Path]]:
    """``ovstop --headless --sandbox --ovn`` scraped every second by a private Prometheus with the rules loaded.

    Yields the API and the sandbox directory (its sockets, for a second ovstop to compare rates).
    """
    if shutil.which("prometheus") is None or shutil.which("ovs-vswitchd") is None:
        pytest.skip("needs prometheus and Open vSwitch")
    tmp = tmp_path_factory.mktemp("prom")
    env = {**os.environ, "TMPDIR": str(tmp)}  # the sandbox directory goes here, where the test can find it
    ovstop = subprocess.Popen(
        [sys.executable, "-m", "ovstop", "--headless", "--sandbox", "--ovn", "--no-ebpf", "--listen", "127.0.0.1:0"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    prometheus = None
    try:
        assert ovstop.stderr is not None
        line = ovstop.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
        assert match, f"ovstop did not start: {line!r}"
        shutil.copy(CONTRIB / mixin.RULES_FILE, tmp / "rules.yml")
        prometheus, api = start_prometheus(
            tmp,
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": ["rules.yml"],
                "scrape_configs": [{"job_name": mixin.JOB, "static_configs": [{"targets": [f"127.0.0.1:{match[1]}"]}]}],
            },
        )
        sandbox_dir = next(tmp.glob("ovstop-sandbox-*"))
        yield api, sandbox_dir
    finally:
        for proc in (prometheus, ovstop):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
        leftover = ovstop.stderr.read() if ovstop.stderr else ""
        assert "Traceback" not in leftover, leftover


@needs_prometheus
def test_every_rule_and_dashboard_query_returns_data(live: tuple[PromApi, Path]) -> None:
    api, sandbox_dir = live
    # Not on the sandbox: eBPF series (no kernel hooks on the userspace datapath) and interface and tunnel
    # drops and errors (its dummy and geneve ports report none: checked below with ovs-vsctl).
    absent = [
        *mixin.ebpf_metrics(),
        "interface_drops",
        "interface_errors",
        "InterfaceDrops",
        "InterfaceErrors",
        "Tunnel drops",
        "Tunnel errors",
    ]
    queries = [(name, name) for name in mixin.RECORDING]
    queries += [(alert.name, alert.signal) for alert in mixin.ALERTS]
    queries += mixin.dashboard_queries(mixin.dashboard())
    queries = [(what, expr) for what, expr in queries if not any(a in what or a in expr for a in absent)]
    assert len(queries) > 40
    stats = subprocess.run(
        ["ovs-vsctl", f"--db=unix:{sandbox_dir / 'db.sock'}", "--columns=statistics", "list", "Interface"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "rx_packets" in stats and "dropped" not in stats and "errors" not in stats

    missing: list[str] = []

    def all_answered() -> bool:
        missing[:] = [f"{what}: {expr}" for what, expr in queries if not api.query(expr)]
        return not missing

    wait_for(all_answered, "data for every query", deadline=90, detail=missing)
    instances = api.get("/api/v1/label/instance/values", **{"match[]": f'ovstop_source_up{{job="{mixin.JOB}"}}'})
    assert instances and instances[0].startswith("127.0.0.1:")
    rules = [r for g in api.get("/api/v1/rules")["groups"] for r in g["rules"]]
    assert len(rules) == len(mixin.RECORDING) + len(mixin.ALERTS)
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    # A healthy sandbox: no alert even pending.
    assert [r["name"] for r in rules if r.get("state") not in (None, "inactive")] == []


@needs_prometheus
def test_prometheus_rates_agree_with_ovstops_own(live: tuple[PromApi, Path]) -> None:
    api, sandbox_dir = live
    counters = ["ovs_vswitchd_datapath_hit_total", "ovs_vswitchd_poll_threads_packets_total"]
    window = 10
    # A full window of scrapes behind the rates Prometheus will report.
    wait_for(
        lambda: all(api.query(f"min(count_over_time({c}[{window}s])) >= {window - 1}") for c in counters),
        "a window of scrapes",
    )
    ctl = next(sandbox_dir.glob("ovs-vswitchd.*.ctl"))
    started = time.time()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ovstop",
            "snapshot",
            "--no-ebpf",
            "-d",
            str(window),
            "--unixctl",
            str(ctl),
            "--db",
            f"unix:{sandbox_dir / 'db.sock'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OVS_RUNDIR": str(sandbox_dir)},
    )
    assert out.returncode == 0, out.stderr
    ended = time.time()
    series = json.loads(out.stdout)["series"]
    for counter in counters:
        own = sum(s["rate"] for s in series if s["name"] == counter and s["rate"] is not None)
        # The same interval as ovstop's two rounds (give or take the collection time).
        result = api.get("/api/v1/query", query=f"sum(rate({counter}[{round(ended - started)}s]))", time=str(ended))
        theirs = float(result["result"][0]["value"][1])
        assert own > 0 and abs(own - theirs) <= 0.15 * max(own, theirs), (counter, own, theirs)
