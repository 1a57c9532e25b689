"""A hung or dead switch: one deadline per round, no fresh series from a source that is down, no zombie.

The switch is hung for real (SIGSTOP on the sandbox's ovs-vswitchd, SIGCONT after); whether a process is
a zombie is read from the kernel (/proc/PID/stat).
"""

from __future__ import annotations

import os
import re
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from serving import serving
from test_headless import page_and_tail, pick, samples

from ovstop.collect.base import Sources, Tables
from ovstop.collect.datapath import DatapathCollector
from ovstop.collect.sampler import Sampler
from ovstop.export.prometheus import render
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

    text = render(sampler.sample(), generate_latest).decode()
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


def scrape_page(port: int, scrape_timeout: float = 10.0) -> tuple[str, float]:
    """One /metrics scrape as Prometheus makes it: the page scrapes share, and the age it states."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": f"{scrape_timeout:g}"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        page, tail = page_and_tail(response.read().decode())
    return page, tail["ovstop_snapshot_age_seconds"]


def until(condition: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.02)


def test_a_scrape_during_a_slow_round_gets_the_previous_page_and_its_age(fresh_sandbox: SandboxSwitch) -> None:
    """The switch hangs (SIGSTOP) while a round runs; scrapes are answered at once from the page before, say
    its age, and start no second round; once the switch answers, the next page is the new round's."""
    options = Options(unixctl=str(fresh_sandbox.unixctl_path), db=fresh_sandbox.db_remote, ebpf=False, timeout=30)
    with running(options) as rt:
        rt.first_sample()
        # No periodic rounds (interval one hour): every scrape kicks one (fresh=0), pages served up to an hour.
        with serving(rt.sampler, interval=3600, fresh=0, bound=3600) as (endpoint, server):
            refresher = endpoint.refresher
            assert refresher is not None
            before, _ = scrape_page(server.server_port)  # kicks a round with the switch up
            until(lambda: refresher.rounds == 1 and refresher.busy_for is None, "the round the first scrape kicked")
            with stopped(vswitchd_pid(fresh_sandbox)):
                during, age = scrape_page(server.server_port)  # kicks the round that hangs on the switch
                until(lambda: refresher.busy_for is not None, "the hanging round to start")
                again, later_age = scrape_page(server.server_port)  # absorbed by the round in flight
                # Both answered while that round still hangs (the switch is still stopped), from one page.
                assert refresher.busy_for is not None and refresher.rounds == 1
            until(lambda: refresher.rounds == 2, "the hanging round to finish")
            after, _ = scrape_page(server.server_port)
    assert during == again != before  # the page of round 1 (published after the first scrape's answer)
    assert later_age > age > 0
    assert after != during  # the new round's page
    assert pick(samples(during), "ovstop_source_up", source="unixctl") == [1.0]  # read before the switch hung


def test_beyond_the_bound_no_page_is_served(fresh_sandbox: SandboxSwitch) -> None:
    """The newest page is older than the bound and the round in flight hangs on the switch: the scrape waits
    its budget (80% of the scraper's timeout), then gets 503 and the reason, not the old page."""
    options = Options(unixctl=str(fresh_sandbox.unixctl_path), db=fresh_sandbox.db_remote, ebpf=False, timeout=30)
    with running(options) as rt:
        rt.first_sample()
        with serving(rt.sampler, interval=3600, fresh=0, bound=0.5) as (endpoint, server):
            refresher = endpoint.refresher
            assert refresher is not None
            with stopped(vswitchd_pid(fresh_sandbox)):
                newest = refresher.newest()
                assert newest is not None
                until(lambda: newest.age() > refresher.bound, "the first page to pass the bound")
                first = refused(server.server_port)  # kicks the round, which hangs on the switch
                until(lambda: refresher.busy_for is not None, "the hanging round to start")
                second = refused(server.server_port)
                assert refresher.busy_for is not None and refresher.rounds == 0  # that round hangs still
            until(lambda: refresher.rounds == 1, "the hanging round to finish")
            page, _ = scrape_page(server.server_port, scrape_timeout=30)  # served again once a round is done
    assert first.startswith("ovstop: the newest collection is ") and "(served up to 0.5 s)" in first
    assert re.fullmatch(
        r"ovstop: the newest collection is [\d.]+ s old \(served up to 0.5 s\) and a round has been running [\d.]+ s\n",
        second,
    ), second
    assert pick(samples(page), "ovstop_source_up", source="ovsdb") == [1.0]


def refused(port: int) -> str:
    """A scrape (1 s scrape timeout) that must be refused with 503: its one-line reason."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "1"}
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=60)
    assert info.value.code == 503
    return info.value.read().decode()


def _state(pid: int) -> str | None:
    """The kernel's state letter for ``pid`` (Z: zombie), None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # gone before open, or between open and read
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
