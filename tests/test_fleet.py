"""``ovstop fleet``: a real Prometheus (Debian's package, loopback, 1 s scrapes) scraping three
``ovstop --headless --sandbox --sandbox-no-pmd`` exporters; the fleet rows are compared with each exporter's own
/metrics page (read with prometheus-client's parser), a stopped exporter must show as down, and a health
check made to fail for real on one sandbox shows on that host's row of the TUI's fleet pane only."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_contrib import PromApi, free_port, start_prometheus, wait_for
from test_headless import pick, samples, scrape
from test_tui_pilot import _until
from textual.widgets import DataTable

from ovstop.export import mixin
from ovstop.remote.attach import RemoteSource
from ovstop.remote.fleet import Fleet, queries
from ovstop.remote.http import HttpClient
from ovstop.sandbox.switch import DIR_PREFIX
from ovstop.tui.app import OvstopApp
from ovstop.tui.feed import RemoteFeed
from ovstop.tui.fleet_app import FleetApp
from ovstop.tui.fleet_table import COLUMNS, FleetTable

FLEET_ANSWERS = Path(__file__).parent / "data" / "fleet" / "answers.json"
"""Prometheus's answers to the fleet queries in a run of the pane test (``OVSTOP_RECORD_FLEET=1``): what the
fleet pane's SVG snapshots show."""
COLUMN = [key for _, key in COLUMNS].index("failing")

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("ovs-vswitchd") is None,
    reason="needs Debian's prometheus package and Open vSwitch",
)


@dataclass
class Exporter:
    proc: subprocess.Popen[str]
    address: str
    tmp: Path

    def vsctl(self, *args: str) -> str:
        """ovs-vsctl on this exporter's sandbox switch (its own TMPDIR holds one sandbox directory)."""
        (db,) = self.tmp.glob(f"{DIR_PREFIX}*/db.sock")
        return subprocess.run(
            ["ovs-vsctl", f"--db=unix:{db}", "--timeout=30", *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    def metrics(self) -> dict:  # type: ignore[type-arg]
        return samples(scrape(f"http://{self.address}/metrics")[1])


@dataclass
class Site:
    api: PromApi
    exporters: list[Exporter]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("fleet")
    exporters: list[Exporter] = []
    prometheus = None
    try:
        for n, traffic in enumerate(("50", "0", "0")):
            home = tmp / f"exporter{n}"
            home.mkdir()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ovstop",
                    "--headless",
                    "--sandbox",
                    "--sandbox-no-pmd",
                    "--sandbox-ports",
                    "2",
                    "--traffic",
                    traffic,
                    "--no-ebpf",
                    "--listen",
                    "127.0.0.1:0",
                ],
                env={**os.environ, "TMPDIR": str(home)},
                stderr=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                text=True,
            )
            exporters.append(Exporter(proc, "", home))
            assert proc.stderr is not None
            line = proc.stderr.readline()
            match = re.search(r"http://(127\.0\.0\.1:\d+)/metrics", line)
            assert match, f"ovstop did not start: {line!r}"
            exporters[-1].address = match[1]
        prometheus, api = start_prometheus(
            tmp,
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {"job_name": mixin.JOB, "static_configs": [{"targets": [e.address for e in exporters]}]}
                ],
            },
        )
        yield Site(api, exporters)
    finally:
        for proc in [prometheus, *(e.proc for e in exporters)]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        for e in exporters:
            leftover = e.proc.stderr.read() if e.proc.stderr else ""
            assert "Traceback" not in leftover, leftover


def test_queries_are_fixed_and_use_declared_metric_names() -> None:
    exprs = queries("ovstop", "1m")
    for expr in exprs.values():
        for name in re.findall(r"\b(ovs_vswitchd_\w+|ovn_\w+|ovstop_\w+)\{", expr):
            assert name in mixin.catalog()
    assert queries("other", "5m").keys() == exprs.keys()


class Recorder:
    """The HTTP client of a fleet, keeping the last answer to each query (for tests/data/fleet/)."""

    def __init__(self, client: HttpClient) -> None:
        self.client = client
        self.answers: dict[str, object] = {}

    def get_json(self, path: str, params: dict[str, str]) -> object:
        answer = self.client.get_json(path, params)
        self.answers[params["query"]] = answer
        return answer


def failing_verdicts(exporter: Exporter) -> list[str]:
    """The checks an exporter's own /metrics page reports failing (ovstop_health 0)."""
    return sorted(
        dict(lab)["check"]
        for (name, lab), value in exporter.metrics().items()
        if name == "ovstop_health" and value == 0
    )


def test_a_failing_health_check_shows_on_its_host_only_in_the_tui_fleet_pane(site: Site) -> None:
    """BFD enabled on one sandbox's geneve0 (no peer: the session goes down, as ovs-vsctl shows) fails its
    tunnel_down check; the TUI's fleet pane (key 7, beside a TUI attached to another exporter) shows it on that
    host and 0 on the others, with each count equal to the exporter's own failing verdicts; Enter attaches."""
    recorder = Recorder(HttpClient(site.api.base))
    fleet = Fleet(recorder, window="5s")  # type: ignore[arg-type]
    sick = site.exporters[1]
    well = [site.exporters[0], site.exporters[2]]

    def scraped() -> bool:
        rows = fleet.rows()
        return len(rows) == 3 and all(r.up and r.get("failing") == 0.0 for r in rows)

    wait_for(scraped, "three exporters scraped, no check failing", deadline=120)
    assert all(failing_verdicts(e) == [] for e in site.exporters)
    sick.vsctl("set", "Interface", "geneve0", "bfd:enable=true")
    try:
        wait_for(
            lambda: "state=down" in sick.vsctl("get", "Interface", "geneve0", "bfd_status").replace('"', ""),
            "BFD session down",
            30,
        )
        feed = RemoteFeed(RemoteSource(HttpClient(f"http://{well[0].address}")), interval=1.0)
        app = OvstopApp(feed, fleet=fleet, fleet_source=site.api.base)

        def shows_sick(table: DataTable[str]) -> bool:
            if table.row_count != 3:
                return False
            failing = {str(k.value): str(table.get_row(k)[COLUMN]) for k in table.rows}
            return failing[sick.address].startswith("1 tunnel_down") and all(failing[e.address] == "0" for e in well)

        async def run() -> None:
            async with app.run_test(size=(200, 50)) as pilot:
                await pilot.press("7")
                pane = app.query_one(FleetTable)
                await _until(pilot, lambda: shows_sick(pane.table), timeout=60)
                rows = {r.instance: r for r in pane.rows}
                assert failing_verdicts(sick) == ["tunnel_down"] == list(rows[sick.address].failing_checks)
                for e in well:
                    assert failing_verdicts(e) == [] and rows[e.address].get("failing") == 0.0
                if os.environ.get("OVSTOP_RECORD_FLEET"):
                    FLEET_ANSWERS.write_text(json.dumps(recorder.answers, indent=1, sort_keys=True) + "\n")
                await pilot.press("slash", *sick.address.split(":")[1], "enter")  # the TUI's filter box
                await _until(pilot, lambda: [r.instance for r in pane.shown] == [sick.address])
                await pilot.press("slash", "escape")
                await _until(pilot, lambda: pane.table.row_count == 3)
                await pilot.press("s")  # sort keys reach the fleet table, not the flow sort
                assert pane.sort == "up" and app.view.sort == "packets"
                pane.table.move_cursor(row=[r.instance for r in pane.shown].index(well[1].address))
                await pilot.press("enter")
            assert app.return_value == well[1].address

        asyncio.run(run())
    finally:
        sick.vsctl("remove", "Interface", "geneve0", "bfd", "enable")
        wait_for(
            lambda: next(r for r in fleet.rows() if r.instance == sick.address).get("failing") == 0.0,
            "tunnel_down healthy again",
            60,
        )


def test_fleet_rows_equal_each_exporters_values_and_a_stopped_one_is_down(site: Site) -> None:
    fleet = Fleet(HttpClient(site.api.base), window="5s")
    by_address = {e.address: e for e in site.exporters}

    def settled() -> bool:
        rows = fleet.rows()
        return (
            len(rows) == 3
            and all(r.up and r.get("flow_limit") is not None for r in rows)
            and next(r for r in rows if r.instance == site.exporters[0].address).get("upcalls") is not None
        )

    wait_for(settled, "three exporters scraped with rates", deadline=120)
    rows = fleet.rows()
    assert {r.instance for r in rows} == set(by_address)
    for row in rows:
        assert row.get("pmd_busy") is None  # no PMD threads in these sandboxes
        assert row.get("ovn_sb") is None  # no OVN either
        assert row.address == row.instance

    def agrees(column: str, metric: str) -> bool:
        """The fleet's value for every host equals the exporter's own (OVS moves the flow limit and the flow
        count between rounds: retried until one Prometheus sample and one scrape see the same round)."""
        rows = {r.instance: r.get(column) for r in fleet.rows()}
        return all(rows[a] == sum(pick(e.metrics(), metric)) for a, e in by_address.items())

    wait_for(lambda: agrees("flow_limit", "ovs_vswitchd_upcall_flows_limit"), "flow limits agree", 60)
    wait_for(lambda: agrees("flows", "ovs_vswitchd_upcall_flows_current"), "flow counts agree", 60)

    def quiet() -> bool:
        """The busy host shows upcalls and hits; the others, once their start-up packets are out of the 5 s
        window, nothing (and 0/0 is no hit ratio, not 0 %)."""
        rows = fleet.rows()
        busy = next(r for r in rows if r.instance == site.exporters[0].address)
        others = [r for r in rows if r is not busy]
        return bool(busy.get("upcalls") and busy.get("hit_ratio")) and all(
            r.get("upcalls") == 0.0 and r.get("lost") == 0.0 and r.get("hit_ratio") is None for r in others
        )

    wait_for(quiet, "the quiet hosts at zero and the busy one moving", 60)

    app = FleetApp(fleet, interval=1.0, source=site.api.base)

    async def run() -> None:
        async with app.run_test(size=(160, 30)) as pilot:
            fleet_table = app.fleet_table
            table = fleet_table.table
            await _until(pilot, lambda: table.row_count == 3, timeout=30)
            assert [r.instance for r in fleet_table.shown] == sorted(by_address)
            await pilot.press("slash", *site.exporters[1].address.split(":")[1], "enter")
            await _until(pilot, lambda: [r.instance for r in fleet_table.shown] == [site.exporters[1].address])
            await pilot.press("slash", "escape")
            await _until(pilot, lambda: table.row_count == 3)

            victim = site.exporters[2]
            victim.proc.send_signal(signal.SIGTERM)
            victim.proc.wait(timeout=30)
            start = fleet.refreshes
            await _until(
                pilot, lambda: not next(r for r in fleet_table.rows if r.instance == victim.address).up, timeout=30
            )
            assert fleet.refreshes - start <= 2
            row = [str(c) for c in table.get_row(victim.address)]
            assert row[1] == "DOWN"
            table.move_cursor(row=[r.instance for r in fleet_table.shown].index(site.exporters[0].address))
            await pilot.press("enter")
        assert app.return_value == site.exporters[0].address

    asyncio.run(run())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["fleet", "--prometheus", "http://127.0.0.1:{port}"], "Connection refused"),
        (["--prometheus", "http://127.0.0.1:{port}"], "Connection refused"),  # the TUI's fleet pane
        (["fleet"], "needs --prometheus"),
        (["--headless", "--prometheus", "http://127.0.0.1:{port}"], "goes with ovstop fleet or the TUI"),
    ],
)
def test_fleet_command_errors_are_one_line(args: list[str], says: str) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "ovstop", *(a.format(port=port) for a in args)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
