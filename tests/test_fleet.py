"""``ovstop fleet``: a real Prometheus (Debian's package, loopback, 1 s scrapes) scraping three
``ovstop --headless --sandbox --sandbox-no-pmd`` exporters; the fleet rows are compared with each exporter's own
/metrics page (read with prometheus-client's parser), and a stopped exporter must show as down."""

from __future__ import annotations

import asyncio
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
import yaml
from test_contrib import PromApi, free_port, wait_for
from test_headless import pick, samples, scrape
from test_tui_pilot import _until
from textual.widgets import DataTable

from ovstop.export import mixin
from ovstop.remote.fleet import Fleet, queries
from ovstop.remote.http import HttpClient
from ovstop.tui.fleet_app import FleetApp

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("ovs-vswitchd") is None,
    reason="needs Debian's prometheus package and Open vSwitch",
)


@dataclass
class Exporter:
    proc: subprocess.Popen[str]
    address: str

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
        for traffic in ("50", "0", "0"):
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
                env={**os.environ, "TMPDIR": str(tmp)},
                stderr=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                text=True,
            )
            exporters.append(Exporter(proc, ""))
            assert proc.stderr is not None
            line = proc.stderr.readline()
            match = re.search(r"http://(127\.0\.0\.1:\d+)/metrics", line)
            assert match, f"ovstop did not start: {line!r}"
            exporters[-1].address = match[1]
        (tmp / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s"},
                    "scrape_configs": [
                        {"job_name": mixin.JOB, "static_configs": [{"targets": [e.address for e in exporters]}]}
                    ],
                }
            )
        )
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
        wait_for(api.ready, "prometheus ready")
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
        for name in re.findall(r"\b(ovs_vswitchd_\w+|ovn_\w+)\{", expr):
            assert name in mixin.catalog()
    assert queries("other", "5m").keys() == exprs.keys()


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
            table = app.query_one("#fleet-table", DataTable)
            await _until(pilot, lambda: table.row_count == 3, timeout=30)
            assert [r.instance for r in app.shown] == sorted(by_address)
            await pilot.press("slash", *site.exporters[1].address.split(":")[1], "enter")
            await _until(pilot, lambda: [r.instance for r in app.shown] == [site.exporters[1].address])
            await pilot.press("slash", "escape")
            await _until(pilot, lambda: table.row_count == 3)

            victim = site.exporters[2]
            victim.proc.send_signal(signal.SIGTERM)
            victim.proc.wait(timeout=30)
            start = fleet.refreshes
            await _until(pilot, lambda: not next(r for r in app.rows if r.instance == victim.address).up, timeout=30)
            assert fleet.refreshes - start <= 2
            row = [str(c) for c in table.get_row(victim.address)]
            assert row[1] == "DOWN"
            table.move_cursor(row=[r.instance for r in app.shown].index(site.exporters[0].address))
            await pilot.press("enter")
        assert app.return_value == site.exporters[0].address

    asyncio.run(run())


def test_fleet_command_errors_are_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ovstop", "fleet", "--prometheus", f"http://127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Connection refused" in result.stderr
