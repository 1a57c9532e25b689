"""OpenFlow table stats: the wire format, and the collector against a real sandbox switch compared with
``ovs-ofctl dump-tables`` and ``dump-flows`` (including a bridge with 100,000 rules)."""

from __future__ import annotations

import re
import struct
from collections import Counter
from pathlib import Path

import pytest

from ovstop.collect.base import Sources, Tables
from ovstop.collect.openflow import FLOW_TABLE_COLUMNS, OpenFlowCollector
from ovstop.errors import ParseError, SourceError
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator
from ovstop.sources import openflow
from ovstop.sources.ovsdb import OPEN_VSWITCH_TABLES, OvsdbSource
from ovstop.sources.unixctl import UnixctlClient

TABLE_RE = re.compile(r"table (\d+):\n\s+active=(\d+), lookup=(\d+), matched=(\d+)")


def ofctl_tables(sw: SandboxSwitch, bridge: str) -> dict[int, tuple[int, int, int]]:
    text = sw.ofctl("-O", "OpenFlow13", "dump-tables", bridge)
    return {int(t): (int(a), int(lk), int(m)) for t, a, lk, m in TABLE_RE.findall(text)}


def ofctl_flow_counts(sw: SandboxSwitch, bridge: str) -> Counter[int]:
    counts: Counter[int] = Counter()
    for line in sw.ofctl("--no-stats", "dump-flows", bridge).splitlines():
        if line.startswith(" "):
            m = re.search(r"\btable=(\d+)", line)
            counts[int(m.group(1)) if m else 0] += 1
    return counts


def sources_for(sw: SandboxSwitch) -> tuple[Sources, OvsdbSource]:
    tables = dict(OPEN_VSWITCH_TABLES)
    for table, cols in FLOW_TABLE_COLUMNS.items():
        tables[table] = (*tables.get(table, ()), *cols)
    db = OvsdbSource(sw.db_remote, tables=tables)
    db.refresh()
    return Sources(unixctl=UnixctlClient(lambda: sw.unixctl_path), ovsdb=db), db


def by_name(samples: list, name: str) -> dict[tuple, float]:
    return {s.labels: s.value for s in samples if s.spec.name == name}


# -- wire format ----------------------------------------------------------------------------------------
def test_table_stats_reply_round_trip() -> None:
    body = openflow.MULTIPART.pack(openflow.OFPMP_TABLE, openflow.OFPMPF_REPLY_MORE)
    body += openflow.TABLE_STATS.pack(0, 5, 100, 90) + openflow.TABLE_STATS.pack(7, 0, 2**40, 1)
    tables, more = openflow.unpack_table_stats(body)
    assert more
    assert tables == [openflow.TableStats(0, 5, 100, 90), openflow.TableStats(7, 0, 2**40, 1)]
    msg = openflow.pack_table_stats_request(9)
    assert openflow.unpack_header(msg) == (4, openflow.OFPT_MULTIPART_REQUEST, 16, 9)


def test_hello_negotiation_and_garbage() -> None:
    bitmap = struct.pack("!HHI", openflow.OFPHET_VERSIONBITMAP, 8, 0b1000010)  # 1.0 and 1.5, not 1.3
    assert not openflow.hello_offers_13(6, bitmap)
    assert openflow.hello_offers_13(6, b"")  # no bitmap: the lower of both versions, 1.3
    assert not openflow.hello_offers_13(1, b"")
    with pytest.raises(ParseError):
        openflow.unpack_table_stats(openflow.MULTIPART.pack(openflow.OFPMP_TABLE, 0) + b"\0" * 10)
    with pytest.raises(ParseError):
        openflow.unpack_header(struct.pack("!BBHI", 4, 0, 4, 1))


def test_missing_socket_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"^OpenFlow .*br9\.mgmt: .+") as err:
        openflow.OpenFlowClient(tmp_path / "br9.mgmt", timeout=0.5).table_stats()
    assert "\n" not in str(err.value)


# -- against the real switch -----------------------------------------------------------------------------
def test_tables_match_ofctl_with_names_and_lookups(fresh_sandbox: SandboxSwitch) -> None:
    sw = fresh_sandbox
    sw.vsctl(
        "--", "--id=@ft", "create", "Flow_Table", "name=classifier", "--", "set", "Bridge", "br0", "flow_tables:0=@ft"
    )
    TrafficGenerator(sw, seed=3).inject(10, repeats=2)
    sources, db = sources_for(sw)
    collector = OpenFlowCollector()
    try:
        tables = Tables()
        samples = list(collector.collect(sources, tables))
        for bridge in sw.bridges:
            want = ofctl_tables(sw, bridge)
            flows = ofctl_flow_counts(sw, bridge)
            active = {
                int(dict(k)["table_id"]): v
                for k, v in by_name(samples, "ovs_vswitchd_flow_table_active_flows").items()
                if dict(k)["bridge"] == bridge
            }
            lookups = {
                int(dict(k)["table_id"]): v
                for k, v in by_name(samples, "ovs_vswitchd_flow_table_lookups_total").items()
                if dict(k)["bridge"] == bridge
            }
            used = {t for t, (a, lk, _m) in want.items() if a or lk}
            assert set(active) == used  # only tables with rules or lookups
            for t in used:
                assert active[t] == want[t][0] == flows[t]
                assert lookups[t] >= want[t][1]  # the ofctl call came after ours; counters only grow
            n_flows = by_name(samples, "ovs_vswitchd_bridge_n_flows")[(("bridge", bridge),)]
            assert n_flows == sum(flows.values())
            if bridge == "br0":  # the sandbox's traffic goes through br0's tables
                assert any(want[t][1] > 0 for t in used) and any(lk > 0 for lk in lookups.values())
        br0_rows = [r for r in tables.rows["flow_tables"] if r["bridge"] == "br0"]
        assert {r["table_id"]: r["table_name"] for r in br0_rows}[0] == "classifier"
        assert sum(r["lookups"] for r in br0_rows) > 0
        first = collector._clients[sw.dir / "br0.mgmt"].connects
        list(collector.collect(sources, Tables()))
        assert collector._clients[sw.dir / "br0.mgmt"].connects == first  # the connection is kept
    finally:
        collector.close()
        db.close()
        sources.unixctl.close()  # type: ignore[union-attr]


def test_reconnects_after_switch_restart(fresh_sandbox: SandboxSwitch) -> None:
    sw = fresh_sandbox
    client = openflow.OpenFlowClient(sw.dir / "br1.mgmt", timeout=1.0)
    try:
        assert sum(t.active_count for t in client.table_stats()) == 1
        sw.kill_vswitchd()
        with pytest.raises(SourceError):
            client.table_stats()
        sw.start_vswitchd()
        assert sum(t.active_count for t in client.table_stats()) == 1
        assert client.connects == 2
    finally:
        client.close()


def load_rules(sw: SandboxSwitch, bridge: str, n: int) -> None:
    """``n`` exact-match rules spread over tables 1-4 of ``bridge``, through ``ovs-ofctl add-flows``."""
    rules = sw.dir / "many.flows"
    rules.write_text(
        "".join(
            f"table={1 + i % 4},priority=10,ip,nw_dst=10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255},actions=drop\n"
            for i in range(n)
        )
    )
    sw.ofctl("add-flows", bridge, str(rules), timeout=300)


def test_hundred_thousand_rules() -> None:
    # Plain dummy ports: busy-polling pmd threads make loading 100k rules take minutes on a shared host.
    with SandboxSwitch(n_ports=2, pmd=False) as sw:
        load_rules(sw, "br1", 100_000)
        client = openflow.OpenFlowClient(sw.dir / "br1.mgmt")
        try:
            stats = {t.table_id: t.active_count for t in client.table_stats() if t.active_count}
        finally:
            client.close()
        assert stats == {0: 1, 1: 25_000, 2: 25_000, 3: 25_000, 4: 25_000}
        assert sum(ofctl_flow_counts(sw, "br1").values()) == 100_001
