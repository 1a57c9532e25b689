"""A hung or dead switch: one deadline per round, no fresh series from a source that is down, no zombie.

The switch is hung for real (SIGSTOP on the sandbox's ovs-vswitchd, SIGCONT after); whether a process is
a zombie is read from the kernel (/proc/PID/stat).
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from ovstop.collect.base import Sources, Tables
from ovstop.collect.datapath import DatapathCollector
from ovstop.collect.sampler import Sampler
from ovstop.export.prometheus import render
from ovstop.export.server import MetricsEndpoint, serve
from ovstop.runtime import Options, running
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sources.unixctl import UnixctlClient


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def vswitchd_pid(sw: SandboxSwitch) -> int:
    return int((sw.dir / "ovs-vswitchd.pid").read_text())


def exposition(sampler: Sampler) -> dict[str, list[tuple[dict[str, str], float]]]:
    from prometheus_client.exposition import generate_latest

    text = render(sampler.sample(), generate_latest, 0.0).decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_a_hung_switch_costs_one_timeout_per_round(fresh_sandbox: SandboxSwitch) -> None:
    """Before: each source call waited its own timeout (dpctl/show, then OpenFlow, then more: 3x)."""
    options = Options(unixctl=str(fresh_sandbox.unixctl_path), db=fresh_sandbox.db_remote, ebpf=False, timeout=1.0)
    with running(options) as rt:
        rt.first_sample()
        with stopped(vswitchd_pid(fresh_sandbox)):
            snap = rt.sampler.sample()
        health = snap.health
        assert not health["unixctl"].up and "timed out" in health["unixctl"].reason
        # Nothing was left of the round for the bridge's OpenFlow socket (served by the same stopped process).
        assert not health["openflow"].up and "deadline had passed" in health["openflow"].reason
        assert health["ovsdb"].up  # ovsdb-server was not stopped


class UnknownCommand:
    """A collector asking the real switch for a command it does not have: a SourceError mid-round."""

    name = source = "unixctl"
    specs = ()

    def collect(self, sources: Sources, tables: Tables) -> Iterator[object]:
        assert sources.unixctl is not None
        sources.unixctl.call("ovstop-test/no-such-command")
        yield from ()


def test_no_series_exported_for_a_source_down_in_that_round(sandbox: SandboxSwitch) -> None:
    assert "lookups: hit:" in sandbox.appctl("dpctl/show")  # the datapath counters exist outside ovstop
    client = UnixctlClient(sandbox.unixctl_path)
    try:
        healthy = exposition(Sampler(Sources(unixctl=client), [DatapathCollector()]))
        assert healthy["ovs_vswitchd_datapath_hit_total"]
        # The same collector, then one that fails on the same source in the same round.
        pages = exposition(Sampler(Sources(unixctl=client), [DatapathCollector(), UnknownCommand()]))
    finally:
        client.close()
    assert pages["ovstop_source_up"] == [({"source": "unixctl"}, 0.0)]
    assert not [name for name in pages if name.startswith("ovs_vswitchd_datapath")]


def test_scrape_honours_the_prometheus_scrape_timeout(fresh_sandbox: SandboxSwitch) -> None:
    """With --timeout 30 a hung switch would hold the scrape 30 s; the scraper's 1 s header wins."""
    options = Options(unixctl=str(fresh_sandbox.unixctl_path), db=fresh_sandbox.db_remote, ebpf=False, timeout=30)
    with running(options) as rt:
        rt.first_sample()
        endpoint = MetricsEndpoint(max_age=0)
        endpoint.sampler = rt.sampler
        server = serve(endpoint, "127.0.0.1", 0)
        try:
            url = f"http://127.0.0.1:{server.server_port}/metrics"
            with stopped(vswitchd_pid(fresh_sandbox)):
                request = urllib.request.Request(url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "1"})
                with urllib.request.urlopen(request, timeout=15) as response:
                    text = response.read().decode()
        finally:
            server.shutdown()
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    assert values[("ovstop_source_up", (("source", "unixctl"),))] == 0.0
    assert values[("ovstop_source_up", (("source", "ovsdb"),))] == 1.0
    assert not [name for name, _ in values if name.startswith("ovs_vswitchd_datapath")]


def _state(pid: int) -> str | None:
    """The kernel's state letter for ``pid`` (Z: zombie), None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def test_a_killed_sandbox_switch_is_reaped(fresh_sandbox: SandboxSwitch) -> None:
    pid = vswitchd_pid(fresh_sandbox)
    assert _state(pid) not in (None, "Z")
    os.kill(pid, signal.SIGKILL)  # from outside, as an operator or the OOM killer would
    deadline = time.monotonic() + 30
    # The kernel drops the process once it is reaped; the reaping thread records the status just after.
    while (_state(pid) is not None or fresh_sandbox.running) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _state(pid) is None, f"ovs-vswitchd {pid} is still there in state {_state(pid)}"
    assert not fresh_sandbox.running
