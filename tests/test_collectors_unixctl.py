"""unixctl collectors against a real sandbox ovs-vswitchd (dummy datapath), checked against ovs-appctl."""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ovstop.collect import conntrack, coverage, datapath, dpif, flows, memory, pmd, upcall
from ovstop.collect.base import Sources, Tables
from ovstop.collect.memo import SampleMemo
from ovstop.errors import ParseError, SourceError
from ovstop.model.metric import Histogram, Sample
from ovstop.parsers import coverage_show, dpctl_show, dpif_show, pmd_stats_show
from ovstop.parsers.reply import JsonReply
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator
from ovstop.sources.unixctl import UnixctlClient

N_NEW = 20
REPEATS = 4


@pytest.fixture(scope="module")
def switch() -> Iterator[SandboxSwitch]:
    with SandboxSwitch(n_ports=2) as sw:
        gen = TrafficGenerator(sw, seed=1)
        try:
            gen.inject(N_NEW, repeats=REPEATS, port=1)
        finally:
            gen.stop()

        # Let the pmd threads drain their queues: until two reads of their packet counters agree.
        def packets() -> list[str]:
            return re.findall(r"(?:packets received|hits|upcall): \d+", sw.appctl("dpif-netdev/pmd-stats-show"))

        deadline, last = time.monotonic() + 30, None
        while (now := packets()) != last:
            assert time.monotonic() < deadline, "pmd counters never settled"
            last = now
            time.sleep(0.2)
        yield sw


@pytest.fixture(scope="module")
def sources(switch: SandboxSwitch) -> Iterator[Sources]:
    client = UnixctlClient(switch.unixctl_path)
    yield Sources(unixctl=client)
    client.close()


def by_name(samples: list[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for s in samples:
        out.setdefault(s.spec.name, []).append(s)
    return out


def test_specs_declared(sources: Sources) -> None:
    for cls in (
        datapath.DatapathCollector,
        dpif.DpifCollector,
        pmd.PmdCollector,
        upcall.UpcallCollector,
        coverage.CoverageCollector,
        memory.MemoryCollector,
        conntrack.ConntrackCollector,
        flows.FlowsCollector,
    ):
        c = cls()
        samples = list(c.collect(sources, Tables()))
        # coverage/show totals are folded in every 5 s, so right after start it may list nothing.
        assert samples or cls is coverage.CoverageCollector, cls.__name__
        assert {s.spec for s in samples} <= set(c.specs), cls.__name__
        names = [spec.name for spec in c.specs]
        assert len(names) == len(set(names)) and all(n.startswith("ovs_vswitchd_") for n in names)


def test_datapath_matches_appctl(switch: SandboxSwitch, sources: Sources) -> None:
    got = by_name(list(datapath.DatapathCollector().collect(sources, Tables())))
    (dp,) = [d for d in dpctl_show.parse(switch.appctl("dpctl/show")) if d.name == "netdev@ovs-netdev"]
    labels = (("datapath", "netdev@ovs-netdev"),)
    value = {name: next(s.value for s in ss if s.labels == labels) for name, ss in got.items()}
    assert value["ovs_vswitchd_datapath_hit_total"] == dp.hit
    assert value["ovs_vswitchd_datapath_missed_total"] == dp.missed
    assert value["ovs_vswitchd_datapath_n_flows"] == dp.flows
    # Every injected packet was looked up once: new tuples miss, their repeats hit.
    assert dp.missed >= N_NEW and dp.hit + dp.missed >= N_NEW * (1 + REPEATS)


def test_dpif_port_info_matches_appctl(switch: SandboxSwitch, sources: Sources) -> None:
    """Every bridge port's datapath and OpenFlow numbers as ``ovs-appctl dpif/show`` prints them (read here with
    this test's own patterns); on OVS 3.4+ ovstop read them from the JSON document."""
    truth, dp, bridge = set(), "", ""
    for line in switch.appctl("dpif/show").splitlines():
        if m := re.match(r"^(\S+@\S+): ", line):
            dp = m.group(1)
        elif m := re.match(r"^  (\S+):$", line):
            bridge = m.group(1)
        elif m := re.match(r"^    (\S+) (\d+)/(\d+|none):? \(([^:)]+)", line):
            truth.add((dp, bridge, *m.groups()))
    samples = list(dpif.DpifCollector().collect(sources, Tables()))
    keys = ("datapath", "bridge", "port", "ofport", "port_no", "type")
    got = {tuple(dict(s.labels)[k] for k in keys) for s in samples}
    assert got == truth and len(samples) == len(truth) >= 4
    assert {s.value for s in samples} == {1.0}


class CachedReply:
    """A client whose ``request_cached`` hands out the same reply until told otherwise."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def request_cached(self, command: str, *args: str, ttl: float) -> str:
        return self.reply


def test_dpif_samples_last_as_long_as_the_reply() -> None:
    text = (Path(__file__).parent / "data" / "unixctl" / "ovs-3.1" / "dpif-show.txt").read_text()
    client = CachedReply(text)
    collector, sources = dpif.DpifCollector(), Sources(unixctl=client)  # type: ignore[arg-type]
    first = list(collector.collect(sources, Tables()))
    assert first and all(a is b for a, b in zip(first, collector.collect(sources, Tables()), strict=True))
    client.reply = text.replace("p2 2/2", "p2 2/7")  # a new reply: read anew
    port_nos = {dict(s.labels)["port"]: dict(s.labels)["port_no"] for s in collector.collect(sources, Tables())}
    assert port_nos["p2"] == "7"


def test_no_pmd_threads_is_not_a_failure() -> None:
    """A netdev datapath whose ports the main thread polls: pmd-perf-show prints nothing, pmd-stats-show the
    main thread only; the collector reports that thread and no error."""
    with SandboxSwitch(n_ports=2, pmd=False) as sw:
        assert not sw.appctl("dpif-netdev/pmd-perf-show").strip()
        stats_threads = re.findall(r"^(main thread|pmd thread)", sw.appctl("dpif-netdev/pmd-stats-show"), re.M)
        client = UnixctlClient(sw.unixctl_path)
        try:
            samples = by_name(list(pmd.PmdCollector().collect(Sources(unixctl=client), Tables())))
        finally:
            client.close()
    assert stats_threads == ["main thread"]
    [n] = samples["ovs_vswitchd_poll_threads_n"]
    assert n.value == 1.0
    assert [dict(s.labels)["thread"] for s in samples["ovs_vswitchd_poll_threads_packets_total"]] == ["main"]


def test_pmd_counters_and_histograms(switch: SandboxSwitch, sources: Sources) -> None:
    samples = list(pmd.PmdCollector().collect(sources, Tables()))
    got = by_name(samples)
    appctl = pmd_stats_show.parse(switch.appctl("dpif-netdev/pmd-stats-show", "ovs-netdev"))
    for t in appctl:
        labels = {("thread", t.label), ("datapath", "netdev@ovs-netdev")}
        mine = {s.spec.name: s.value for s in samples if labels <= set(s.labels)}
        assert mine["ovs_vswitchd_poll_threads_packets_total"] == t.counters["rx_packets"]
        assert mine["ovs_vswitchd_poll_threads_missed_total"] == t.counters["upcalls"]
        assert mine["ovs_vswitchd_poll_threads_megaflow_hit_total"] == t.counters["megaflow_hits"]
        if t.thread == "pmd":
            # busy cycles keep growing only while packets arrive; none do now.
            assert mine["ovs_vswitchd_poll_threads_busy_cycles_total"] == t.counters["busy_cycles"]
    total_rx = sum(s.value for s in got["ovs_vswitchd_poll_threads_packets_total"])
    assert total_rx >= N_NEW * (1 + REPEATS)
    hists = [s for s in samples if isinstance(s.value, Histogram)]
    pmd_threads = [t for t in appctl if t.thread == "pmd"]
    assert len(hists) == 7 * len(pmd_threads)
    for s in hists:
        assert s.value.bounds[-1] == math.inf and len(s.value.bounds) == 32
    per_batch = [s.value for s in got["ovs_vswitchd_poll_threads_packets_per_batch"] if isinstance(s.value, Histogram)]
    assert sum(h.count for h in per_batch) > 0


def test_upcall_memory_coverage(switch: SandboxSwitch, sources: Sources) -> None:
    # The revalidators publish max flows after their next dump: wait for ovs-appctl to show it first.
    deadline = time.monotonic() + 30
    while int(re.search(r"\(max (\d+)\)", switch.appctl("upcall/show"))[1]) < N_NEW:  # type: ignore[index]
        assert time.monotonic() < deadline, "upcall/show never reported the flows"
        time.sleep(0.1)
    up = by_name(list(upcall.UpcallCollector().collect(sources, Tables())))
    assert up["ovs_vswitchd_upcall_flows_limit"][0].value > 0
    assert up["ovs_vswitchd_upcall_flows_max"][0].value >= N_NEW
    mem = by_name(list(memory.MemoryCollector().collect(sources, Tables())))
    handlers = re.search(r"\bhandlers:(\d+)", switch.appctl("memory/show"))
    if handlers:  # OVS 3.1; 3.5 prints no handlers count for this switch
        assert mem["ovs_vswitchd_handler_n_threads"][0].value == int(handlers[1]) >= 1
    else:
        assert "ovs_vswitchd_handler_n_threads" not in mem
    assert mem["ovs_vswitchd_revalidator_n_threads"][0].value == len(up["ovs_vswitchd_upcall_ukeys"])
    deadline = time.monotonic() + 12
    cov: dict[str, float] = {}
    while "dpif_flow_put" not in cov and time.monotonic() < deadline:
        time.sleep(0.5)  # coverage totals are updated every 5 s
        cov = {
            dict(s.labels)["counter"]: float(s.value)  # type: ignore[arg-type]
            for s in coverage.CoverageCollector().collect(sources, Tables())
        }
    later = {c.name: c.total for c in coverage_show.parse(switch.appctl("coverage/show")).counters}
    assert cov["dpif_flow_put"] >= N_NEW
    for name, total in cov.items():
        assert later[name] >= total  # counters only grow between our read and ovs-appctl's


def test_conntrack_and_flows(switch: SandboxSwitch, sources: Sources) -> None:
    ct = by_name(list(conntrack.ConntrackCollector().collect(sources, Tables())))
    nconns = int(switch.appctl("dpctl/ct-get-nconns", "netdev@ovs-netdev"))
    assert ct["ovs_vswitchd_conntrack_n_connections"][0].value == nconns
    assert ct["ovs_vswitchd_conntrack_connection_limit"][0].value > 0
    # Datapath flows expire after 10 s idle, and in a loaded guest the module's traffic is minutes old by now:
    # send fresh tuples (twice each, so they have packets) and wait until the switch lists them.
    gen = TrafficGenerator(switch, seed=2)
    try:
        gen.inject(N_NEW, repeats=1, port=1)
    finally:
        gen.stop()
    deadline = time.monotonic() + 30
    while switch.appctl("dpctl/dump-flows", "netdev@ovs-netdev").count("actions:") < N_NEW:
        assert time.monotonic() < deadline, "the fresh flows never showed in dpctl/dump-flows"
        time.sleep(0.2)
    tables = Tables()
    samples = by_name(list(flows.FlowsCollector(max_flows=5).collect(sources, tables)))
    rows = tables.rows["dp_flows"]
    assert len(rows) == 5 and all(r["ufid"] and r["datapath"] == "netdev@ovs-netdev" for r in rows)
    assert samples["ovs_vswitchd_datapath_flows_dumped"][0].value >= N_NEW
    assert samples["ovs_vswitchd_datapath_flows_decoded"][0].value == 5
    full = Tables()
    list(flows.FlowsCollector().collect(sources, full))
    assert sum(r["packets"] for r in full.rows["dp_flows"]) > 0


def test_commands_not_in_list_commands_are_never_sent(switch: SandboxSwitch, sources: Sources) -> None:
    listed = {line.split()[0] for line in switch.appctl("list-commands").splitlines()[1:] if line.strip()}
    client = sources.unixctl
    assert client is not None and client.has("dpif/show")
    assert client.commands == listed
    with pytest.raises(SourceError, match=r"has no command dpif-netdev/no-such-command \(not in list-commands\)"):
        client.call("dpif-netdev/no-such-command")
    assert client.is_connected  # refused locally: the connection stays up


def test_json_replies_where_the_switch_offers_them(switch: SandboxSwitch) -> None:
    """The connection asks for JSON exactly when the switch lists set-options (OVS 3.4+), again after a
    reconnect; dpif/show then comes as a document and parses to what ovs-appctl's text says."""
    offers_json = "set-options" in switch.appctl("list-commands")
    version = switch.appctl("version")
    client = UnixctlClient(switch.unixctl_path)
    try:
        for connection in (1, 2):  # the second on a new connection: the format is per connection, asked again
            reply = client.request("dpif/show")
            assert client.connects == connection
            text = dpif_show.parse(switch.appctl("dpif/show"))
            if not offers_json:
                assert isinstance(reply, str) and client.output_format == "text"
                assert client.format_reason == "no set-options in list-commands (OVS < 3.4)"
                assert re.search(r"\) 3\.[0-3]\.", version), version
            else:
                assert isinstance(reply, JsonReply) and client.output_format == "json"
                assert (client.formats["dpif/show"], client.formats["version"]) == ("json", "text")
                ours = dpif_show.parse(reply)  # read first: the switch's counters can only have grown since
                assert [(d.name, d.bridges) for d in ours] == [(d.name, d.bridges) for d in text]
                assert all(o.hit <= t.hit and o.missed <= t.missed for o, t in zip(ours, text, strict=True))
                # A command without a JSON form still reaches its text parser, unwrapped.
                assert dpctl_show.parse(client.call("dpctl/show"))[0].name == "netdev@ovs-netdev"
                assert client.formats["dpctl/show"] == "text"
                with pytest.raises(ParseError, match=r"dpif/show: ovs-vswitchd 3\.\d+\.\d+ answered JSON"):
                    client.call("dpif/show")  # a text-only caller never parses a document as text
            client.close()
    finally:
        client.close()


def test_collectors_ran_on_the_format_the_switch_offers(switch: SandboxSwitch, sources: Sources) -> None:
    """The module's equality tests share ``sources``: its connection is JSON where the switch lists set-options
    (every collector's command then came back as a plain wrapper, unwrapped to the text its parser reads).
    ``OVSTOP_EXPECT_UNIXCTL_FORMAT`` (set by the guest test from the guest's Debian package version) pins it."""
    offers_json = "set-options" in switch.appctl("list-commands")
    list(datapath.DatapathCollector().collect(sources, Tables()))
    client = sources.unixctl
    assert client is not None and client.output_format == ("json" if offers_json else "text")
    assert client.output_format == os.environ.get("OVSTOP_EXPECT_UNIXCTL_FORMAT", client.output_format)
    assert client.formats["dpctl/show"] == "text"


def test_no_client_is_source_error() -> None:
    with pytest.raises(SourceError):
        list(datapath.DatapathCollector().collect(Sources(), Tables()))


def dp_counters(switch: SandboxSwitch) -> dpctl_show.DpctlDatapath:
    (dp,) = [d for d in dpctl_show.parse(switch.appctl("dpctl/show")) if d.name == "netdev@ovs-netdev"]
    return dp


def test_datapath_unchanged_reply_gives_the_same_list(switch: SandboxSwitch, sources: Sources) -> None:
    """Two rounds between which ``ovs-appctl dpctl/show`` did not change: the second is the first's very list."""
    collector = datapath.DatapathCollector()
    for _ in range(20):  # a datapath flow may expire between the reads: try again
        before = switch.appctl("dpctl/show")
        first, second = (collector.collect(sources, Tables()) for _ in range(2))
        if switch.appctl("dpctl/show") == before:
            break
    else:
        pytest.fail("dpctl/show never held still for two rounds")
    assert isinstance(first, list) and first and second is first


def test_datapath_new_packets_give_new_samples_for_what_changed(switch: SandboxSwitch, sources: Sources) -> None:
    """A packet of a cached flow, sent again: the next round's hit count is a new sample with ovs-appctl's
    number; every series whose value stayed (missed, lost …) is last round's very sample."""
    gen = TrafficGenerator(switch, seed=3)
    try:
        [packet] = gen.inject(1, port=1)  # one new flow: one miss, now cached
    finally:
        gen.stop()
    collector = datapath.DatapathCollector()
    deadline, dp = time.monotonic() + 30, dp_counters(switch)
    while True:  # a round between two equal reads of ovs-appctl: the pmd thread counts on its own time
        last = collector.collect(sources, Tables())
        if (now := dp_counters(switch)) == dp:
            break
        assert time.monotonic() < deadline, "counters never settled"
        dp = now
        time.sleep(0.2)
    switch.appctl("netdev-dummy/receive", "p1", packet)
    while dp_counters(switch).hit == dp.hit:
        assert time.monotonic() < deadline, "the packet never hit"
        time.sleep(0.05)
    now = collector.collect(sources, Tables())
    after = dp_counters(switch)
    assert now is not last
    before = {s.key: s for s in last}
    for s in now:
        old = before[s.key]
        if s.value == old.value:
            assert s is old, s.spec.name
        else:
            assert s is not old
    value = {s.spec.name: s.value for s in now}
    assert value[datapath.HIT.name] == after.hit == dp.hit + 1
    assert value[datapath.MISSED.name] == after.missed == dp.missed  # a hit, no new miss
    same = [s.spec.name for s in now if s is before[s.key]]
    assert datapath.MISSED.name in same and datapath.LOST.name in same


def test_a_bad_reply_raises_every_round(switch: SandboxSwitch) -> None:
    """A reply that does not parse is not remembered: it raises each round it comes, and the last good reply's
    samples stay what they were."""
    good, bad = switch.appctl("dpctl/show"), "netdev@ovs-netdev:\ngarbage\n"
    memo: SampleMemo[str] = SampleMemo()

    def make(text: str) -> Iterator[Sample]:
        return (Sample(datapath.HIT, (), float(d.hit)) for d in dpctl_show.parse(text))

    first = memo.samples(good, make)
    assert first == [Sample(datapath.HIT, (), float(dp_counters(switch).hit))]
    for _ in range(3):
        with pytest.raises(ParseError, match="unexpected line 'garbage'"):
            memo.samples(bad, make)
    assert memo.samples(good, make) is first
