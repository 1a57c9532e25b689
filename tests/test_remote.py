"""``ovstop --connect``: the TUI attached to a headless ovstop over HTTP, against a real sandbox switch.

The headless side runs as the installed command (a subprocess on its own loopback port); its /metrics page,
read with prometheus-client's parser, is the truth the remote TUI's numbers are compared with. Events come
from a recording of a real eBPF capture (tests/data/recordings), counted straight from its JSON lines.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from serving import serving
from test_contrib import free_port
from test_headless import pick, samples, scrape
from test_tui_pilot import LARGE, _plain, _until
from test_web import PASSWORD, tls_files  # noqa: F401 - a fixture
from textual.widgets import DataTable

from ovstop.events.recording import read_lines
from ovstop.events.store import EventStore
from ovstop.export import webconfig
from ovstop.remote.attach import REMOTE, RemoteSource
from ovstop.remote.http import HttpClient
from ovstop.runtime import Options, running
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator
from ovstop.tui.app import OvstopApp
from ovstop.tui.feed import RemoteFeed
from ovstop.tui.header import HeaderBar

OVSTOP = [sys.executable, "-m", "ovstop"]
RECORDING = Path(__file__).parent / "data" / "recordings" / "guest-ebpf.jsonl"


@contextmanager
def headless_on(sw: SandboxSwitch, port: int, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """``ovstop --headless`` on the sandbox at 127.0.0.1:``port``, serving once this yields."""
    proc = subprocess.Popen(
        [*OVSTOP, "--headless", "--listen", f"127.0.0.1:{port}", "--db", sw.db_remote, "--no-ebpf", *extra],
        env={**os.environ, **sw.env},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert re.search(rf"://127\.0\.0\.1:{port}/metrics", line), f"got {line!r} (rc={proc.poll()})"
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        leftover = proc.stderr.read() if proc.stderr else ""
        assert "Traceback" not in leftover, leftover


def _dumped_ufids(sandbox: SandboxSwitch) -> set[str]:
    return set(re.findall(r"ufid:([0-9a-f-]+)", sandbox.appctl("dpctl/dump-flows", "-m")))


def _link_up(app: OvstopApp) -> bool:
    snap = app.shown
    return snap is not None and snap.health[REMOTE].up and bool(snap.tables.get("dp_flows"))


def test_remote_tui_shows_the_exporters_numbers_then_stale_then_recovers(sandbox: SandboxSwitch) -> None:
    traffic = TrafficGenerator(sandbox, seed=12)
    traffic.inject(20, repeats=3)  # then quiet: counters stay put while compared
    port = free_port()
    with headless_on(sandbox, port) as first:
        feed = RemoteFeed(RemoteSource(HttpClient(f"http://127.0.0.1:{port}")), interval=0.2)
        app = OvstopApp(feed)

        async def run() -> None:
            async with app.run_test(size=LARGE) as pilot:
                await _until(pilot, lambda: _link_up(app) and app.snapshots_received >= 3, timeout=30)
                _, text = scrape(f"http://127.0.0.1:{port}/metrics")
                values = samples(text)
                snap = app.shown
                assert snap is not None
                compared = 0
                for s in snap.find("ovs_vswitchd_datapath_hit_total") + snap.find("ovs_vswitchd_datapath_missed_total"):
                    assert pick(values, s.name, **dict(s.labels)) == [s.value]
                    compared += 1
                for s in snap.find("ovs_vswitchd_interface_rx_packets_total"):
                    assert pick(values, s.name, **dict(s.labels)) == [s.value]
                    compared += 1
                assert compared >= 5
                header = _plain(app.query_one(HeaderBar))
                assert f"remote 127.0.0.1:{port} (read-only)" in header and "remote up" in header
                assert str(snap.meta["hostname"]) in header and "STALE" not in header

                # Flow-diff events: new flows on the remote switch appear as installed in the events pane.
                # Truth: ufids ovs-appctl dumps that it did not dump before. The session's switch is shared and
                # every generator numbers its tuples from 0, so a tuple may already have its megaflow: inject
                # until five new ones are there (the handler installs them asynchronously).
                before = _dumped_ufids(sandbox)
                new: set[str] = set()

                def five_new_flows() -> bool:
                    nonlocal new
                    new = _dumped_ufids(sandbox) - before
                    if len(new) < 5:
                        traffic.inject(5)
                    return len(new) >= 5

                def installed() -> set[str]:
                    return {c.ufid for c in app.view.flows.changes if c.change == "installed"}

                await _until(pilot, five_new_flows, timeout=30)
                await _until(pilot, lambda: new <= installed(), timeout=30)
                table = app.query_one("#events-table", DataTable)
                await _until(pilot, lambda: table.row_count == min(app.view.flows.total_changes, 500))

                # The remote goes away: STALE, the link down with its reason; back on the same port: recovery.
                first.send_signal(signal.SIGTERM)
                first.wait(timeout=20)
                await _until(pilot, lambda: "STALE" in _plain(app.query_one(HeaderBar)), timeout=30)
                assert "remote down" in _plain(app.query_one(HeaderBar))
                stale_seq = app.shown.seq  # type: ignore[union-attr]
                with headless_on(sandbox, port):
                    await _until(pilot, lambda: _link_up(app) and app.shown.seq != stale_seq, timeout=60)
                    header = _plain(app.query_one(HeaderBar))
                    assert "STALE" not in header and "remote up" in header

        asyncio.run(run())


def _recorded_events() -> list:  # type: ignore[type-arg]
    return [line.event for line in read_lines(RECORDING) if line.event is not None]


def _types_in_file() -> Counter[str]:
    """Event types counted from the recording's raw JSON (not through ovstop's decoder)."""
    kinds: Counter[str] = Counter()
    for text in RECORDING.read_text().splitlines():
        obj = json.loads(text)
        if isinstance(obj, dict) and isinstance(obj.get("ovs"), dict) and "event_type" in obj["ovs"]:
            kinds[obj["ovs"]["event_type"]] += 1
    return kinds


@contextmanager
def endpoint_with_events(
    sandbox: SandboxSwitch, store: EventStore, web_config: webconfig.WebConfig | None = None
) -> Iterator[str]:
    """The headless endpoint in this process on a live runtime, serving ``store`` as its event stream."""
    with running(Options(unixctl=str(sandbox.unixctl_path), db=sandbox.db_remote, ebpf=False)) as rt:
        rt.first_sample()
        with serving(rt.sampler, web_config=web_config) as (endpoint, server):
            endpoint.events = store
            yield f"{server.scheme}://127.0.0.1:{server.server_port}"


def test_events_flow_through_in_order_and_a_reader_catches_up(sandbox: SandboxSwitch) -> None:
    events = _recorded_events()
    assert len(events) > 10
    store = EventStore()
    with endpoint_with_events(sandbox, store) as url:
        source = RemoteSource(HttpClient(url))
        half = len(events) // 2
        for ev in events[:half]:
            store.add(ev)
        assert source.sample().health[REMOTE].up
        assert source.events.stats().accepted == half
        for ev in events[half:]:
            store.add(ev)
        source.sample()
        assert source.events.totals() == dict(_types_in_file())
        got = [ev.timestamp for ev in source.events.snapshot()]
        assert got == [ev.timestamp for ev in events]
        source.sample()  # nothing new: nothing repeated
        assert source.events.stats().accepted == len(events)


def test_a_reader_behind_the_ring_gets_what_is_held_and_a_restarted_remote_starts_over(sandbox: SandboxSwitch) -> None:
    events = _recorded_events()
    store = EventStore(max_events=5)
    with endpoint_with_events(sandbox, store) as url:
        source = RemoteSource(HttpClient(url))
        for ev in events[:12]:
            store.add(ev)
        source.sample()
        assert [ev.timestamp for ev in source.events.snapshot()] == [ev.timestamp for ev in events[7:12]]
    restarted = EventStore()
    with endpoint_with_events(sandbox, restarted) as url:
        source.client = HttpClient(url)
        restarted.add(events[20])
        source.sample()
        assert source.events.snapshot()[-1].timestamp == events[20].timestamp


def test_tls_and_basic_auth_guard_the_snapshot_and_events(
    sandbox: SandboxSwitch,
    tls_files: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    config = webconfig.load(str(tls_files / "web.yml"))
    with endpoint_with_events(sandbox, EventStore(), config) as url:
        assert url.startswith("https://")
        ca = str(tls_files / "cert.pem")
        refused = RemoteSource(HttpClient(url, ca_file=ca)).sample().health[REMOTE]
        assert not refused.up and "401" in refused.reason
        untrusted = RemoteSource(HttpClient(url)).sample().health[REMOTE]
        assert not untrusted.up and "CERTIFICATE_VERIFY_FAILED" in untrusted.reason
        source = RemoteSource(HttpClient(url, ca_file=ca, credentials=f"prometheus:{PASSWORD}"))
        assert source.sample().health[REMOTE].up


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--connect", "ftp://host"], {}, "expected an http:// or https:// URL"),
        (["--connect", "http://127.0.0.1:1", "--headless"], {}, "cannot be combined with --headless"),
        (["--connect-ca", "x.pem"], {}, "go with --connect URL"),
        (["--connect", "http://127.0.0.1:1", "--connect-auth-file", "/nonexistent"], {}, "No such file"),
        (["--connect", "http://127.0.0.1:1"], {"OVSTOP_CONNECT_AUTH": "nocolon"}, "expected user:password"),
        (["--connect", "http://127.0.0.1:1", "--connect-ca", "x.pem"], {}, "plain http://"),
        (["--connect", "http://127.0.0.1:1"], {}, "127.0.0.1:1: Connection refused"),
    ],
)
def test_bad_connect_options_are_one_line(args: list[str], env: dict[str, str], fragment: str) -> None:
    result = subprocess.run([*OVSTOP, *args], capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
