"""Interface statistics as the counter monitor (:mod:`ovstop.sources.ovsdb_counters`) keeps them, against a real
switch, with the truth read by ``ovs-vsctl``: after updates (diffs of a map: keys changed, added, removed), after
ports come and go, after the connection drops; and the maps that did not change are kept as the same objects.

Packets are received with ``netdev-dummy/receive`` towards the sandbox's dropped range (10.99.0.0/16), so that
only the receiving interface's statistics move. ovs-vswitchd writes statistics to OVSDB every 5 s: every wait
here is bounded, and the monitor's update and the ``ovs-vsctl`` read race, so agreement is awaited in a loop.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from test_hung_switch import stopped, vswitchd_pid
from test_ovsdb_replica import vsctl_rows

from ovstop.collect.base import Sources, Tables
from ovstop.collect.bridge import BRIDGE_TRAFFIC, BridgeCollector
from ovstop.collect.interface import STATISTICS, InterfaceCollector, traffic_name
from ovstop.collect.topology import attachments
from ovstop.errors import SourceError
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sources.ovsdb import OvsdbSource

DROPPED = (
    "eth(src=02:00:00:00:00:01,dst=02:00:00:00:00:02),eth_type(0x0800),"
    "ipv4(src=10.0.0.1,dst=10.99.0.1,proto=17,tos=0,ttl=64,frag=no),udp(src=1000,dst=2000)"
)


def truth(sw: SandboxSwitch) -> dict[str, dict[str, Any]]:
    """Interface uuid -> {"name", "statistics"} as ``ovs-vsctl --format=json list Interface`` reads them."""
    return vsctl_rows(sw, "Interface", ("name", "statistics"))


def non_empty(maps: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """Row uuid -> map, without the empty maps (the monitor may leave a row with none out)."""
    return {u: dict(m) for u, m in maps.items() if m}


def traffic_truth(rows: dict[str, dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(interface, metric name) -> value of every traffic series ovs-vsctl's ``rows`` give."""
    return {
        (r["name"], traffic_name("ovs_vswitchd_interface", key)): float(r["statistics"][key])
        for r in rows.values()
        for key, _, _ in STATISTICS
        if key in r["statistics"]
    }


def uuid_of(rows: dict[str, dict[str, Any]], name: str) -> str:
    (found,) = [u for u, r in rows.items() if r["name"] == name]
    return found


def agreed(sw: SandboxSwitch, db: OvsdbSource, timeout: float = 20.0) -> tuple[Mapping[str, Any], dict[str, Any]]:
    """Refreshes until ``db.counters("Interface")`` equals ovs-vsctl's statistics for every interface (by uuid):
    (the monitor's mapping, ovs-vsctl's rows)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = truth(sw)
        db.refresh()
        got = db.counters("Interface")
        if non_empty(got) == {u: r["statistics"] for u, r in rows.items() if r["statistics"]}:
            return got, rows
        assert time.monotonic() < deadline, f"counters {non_empty(got)} never matched ovs-vsctl's {rows}"
        time.sleep(0.1)


def receive(sw: SandboxSwitch, port: str, name: str, n: int, timeout: float = 20.0) -> int:
    """Receives ``n`` packets on ``port`` and waits until ovs-vsctl shows them in its rx_packets (returned)."""
    rows = truth(sw)
    before = rows[uuid_of(rows, name)]["statistics"].get("rx_packets", 0)
    for _ in range(n):
        sw.appctl("netdev-dummy/receive", port, DROPPED)
    deadline = time.monotonic() + timeout
    while True:
        rows = truth(sw)
        rx = rows[uuid_of(rows, name)]["statistics"].get("rx_packets", 0)
        if rx >= before + n:
            return int(rx)
        assert time.monotonic() < deadline, f"{name} rx_packets stayed {rx} in OVSDB (was {before})"
        time.sleep(0.2)


def seen(sw: SandboxSwitch, db: OvsdbSource, row: str, rx: int) -> tuple[Mapping[str, Any], dict[str, Any]]:
    """Waits until the monitor agrees with ovs-vsctl and shows at least ``rx`` received packets on ``row``:
    (the monitor's mapping, ovs-vsctl's rows), as :func:`agreed`."""
    deadline = time.monotonic() + 20
    while True:
        got, rows = agreed(sw, db)
        if got.get(row, {}).get("rx_packets", 0) >= rx:
            return got, rows
        assert time.monotonic() < deadline, f"the monitor never saw {rx} packets received on {row}"


@contextmanager
def opened(sw: SandboxSwitch) -> Iterator[OvsdbSource]:
    db = OvsdbSource(sw.db_remote)
    try:
        db.refresh()
        yield db
    finally:
        db.close()


def test_counters_follow_ovs_vsctl_through_updates(fresh_sandbox: SandboxSwitch) -> None:
    """Statistics changed after the initial contents arrived (update2 ``modify`` diffs): every interface's map
    equals ovs-vsctl's, and the interface that received packets shows ovs-vsctl's new rx_packets."""
    sw = fresh_sandbox
    with opened(sw) as db:
        before, rows = agreed(sw, db)
        p3 = uuid_of(rows, "p3")
        rx_before = rows[p3]["statistics"].get("rx_packets", 0)
        after, rows = seen(sw, db, p3, receive(sw, "p3", "p3", 5))
        assert after[p3]["rx_packets"] == rows[p3]["statistics"]["rx_packets"] >= rx_before + 5
        assert before.get(p3, {}).get("rx_packets", 0) == rx_before


def test_interface_and_bridge_samples_follow_an_update_of_statistics_alone(fresh_sandbox: SandboxSwitch) -> None:
    """After an update in which only statistics moved (the join is the same object: the interface collector makes
    again only the interfaces whose maps are new), every interface's traffic samples read as ovs-vsctl's
    statistics, its identity and state samples are last round's very list, and each bridge's sums are the sums
    of ovs-vsctl's statistics over the interfaces ``ovs-vsctl list-ifaces`` gives it."""
    sw = fresh_sandbox
    with opened(sw) as db:
        sources = Sources(ovsdb=db)
        interfaces, bridges = InterfaceCollector(), BridgeCollector()
        _, rows = agreed(sw, db)
        first = interfaces.collect(sources, Tables())
        bridges.collect(sources, Tables())
        join = attachments(sources)
        p3 = uuid_of(rows, "p3")
        _, rows = seen(sw, db, p3, receive(sw, "p3", "p3", 4))
        assert attachments(sources) is join, "a row other than statistics changed: not an update of statistics alone"
        after = interfaces.collect(sources, Tables())
        assert after.lists[0] is first.lists[0]
        got = {(dict(s.labels)["interface"], s.spec.name): s.value for s in after.lists[1]}
        assert got == traffic_truth(rows)
        assert got[("p3", "ovs_vswitchd_interface_rx_packets_total")] >= 4
        members = set(sw.vsctl("list-ifaces", "br0").split())
        sums = {s.spec.name: s.value for s in bridges.collect(sources, Tables()) if s.labels == (("bridge", "br0"),)}
        for key in BRIDGE_TRAFFIC:
            reported = [r["statistics"][key] for r in rows.values() if r["name"] in members and key in r["statistics"]]
            assert sums.get(traffic_name("ovs_vswitchd_bridge", key)) == (float(sum(reported)) if reported else None)


def test_unchanged_maps_and_mappings_are_the_same_objects(fresh_sandbox: SandboxSwitch) -> None:
    """Across an update that changed one interface's statistics (as ovs-vsctl reads them), every interface whose
    statistics ovs-vsctl reads unchanged keeps the very same map object; the changed one gets a new map and the
    table a new mapping. Two refreshes with nothing received in between give the same mapping."""
    sw = fresh_sandbox
    with opened(sw) as db:
        before, rows_before = agreed(sw, db)
        before_maps = dict(before)
        p3 = uuid_of(rows_before, "p3")
        after, rows_after = seen(sw, db, p3, receive(sw, "p3", "p3", 3))
        assert after is not before and after[p3] is not before_maps.get(p3)
        unchanged = [
            u for u in rows_after if u in rows_before and rows_after[u]["statistics"] == rows_before[u]["statistics"]
        ]
        assert [u for u in unchanged if rows_after[u]["statistics"]], "every interface's statistics changed"
        assert all(after.get(u) is before_maps.get(u) for u in unchanged)

        for _ in range(50):  # statistics land every 5 s: a pair of refreshes with nothing new in between
            db.refresh()
            first = db.counters("Interface")
            time.sleep(0.2)
            db.refresh()
            if db.counters("Interface") is first:
                break
        else:
            pytest.fail("every two refreshes gave a new mapping")


def test_a_round_that_fails_part_way_through_new_ports_is_made_whole_next(fresh_sandbox: SandboxSwitch) -> None:
    """A port replaced by another while making the new one's samples fails once (a collector bug, which the
    sampler isolates): the next round's traffic reads as ovs-vsctl's statistics, interface by interface,
    not as the last layout's labels over the new ports' numbers."""
    sw = fresh_sandbox
    with opened(sw) as db:
        sources = Sources(ovsdb=db)
        interfaces = InterfaceCollector()
        agreed(sw, db)
        interfaces.collect(sources, Tables())
        sw.vsctl("del-port", "br0", "p4")
        sw.vsctl("add-port", "br0", "added0", "--", "set", "Interface", "added0", "type=dummy")
        deadline = time.monotonic() + 20
        while True:
            _, rows = agreed(sw, db)
            if rows[uuid_of(rows, "added0")]["statistics"]:
                break
            assert time.monotonic() < deadline, "ovs-vsctl never showed statistics of added0"
            time.sleep(0.2)
        make = interfaces.make

        def failing(att: Any, known: Any) -> Any:
            if att.name == "added0":
                raise RuntimeError("a bug in making added0's samples")
            return make(att, known)

        interfaces.make = failing  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            interfaces.collect(sources, Tables())
        interfaces.make = make  # type: ignore[method-assign]
        tables = Tables()
        got = {
            (dict(s.labels)["interface"], s.spec.name): s.value for s in interfaces.collect(sources, tables).lists[1]
        }
        assert got == traffic_truth(rows)
        assert {row["interface"] for row in tables.rows["interfaces"]} == {r["name"] for r in rows.values()}


def test_a_deleted_interface_vanishes_and_an_added_one_appears(fresh_sandbox: SandboxSwitch) -> None:
    """del-port / add-port: the deleted interface's uuid leaves the counters, the added one's arrives with the
    statistics ovs-vsctl reads for it; every other map still equals ovs-vsctl's."""
    sw = fresh_sandbox
    with opened(sw) as db:
        _, rows = agreed(sw, db)
        removed = uuid_of(rows, "p4")
        sw.vsctl("del-port", "br0", "p4")
        sw.vsctl("add-port", "br0", "added0", "--", "set", "Interface", "added0", "type=dummy")
        deadline = time.monotonic() + 20
        while True:
            got, rows = agreed(sw, db)
            added = uuid_of(rows, "added0")
            if rows[added]["statistics"]:
                break
            assert time.monotonic() < deadline, "ovs-vsctl never showed statistics of added0"
            time.sleep(0.2)
        assert removed not in got and removed not in rows
        assert got[added] == rows[added]["statistics"]


def test_keys_written_and_removed_in_the_database(fresh_sandbox: SandboxSwitch) -> None:
    """Statistics written with ovs-vsctl (a key changed, a key added), one key removed, then the whole map
    cleared: after each, the monitor's maps equal what ovs-vsctl reads back."""
    sw = fresh_sandbox
    with opened(sw) as db:
        agreed(sw, db)
        with stopped(vswitchd_pid(sw)):  # ovs-vswitchd would overwrite what is written
            sw.vsctl("--no-wait", "set", "Interface", "p2", "statistics:rx_dropped=7", "statistics:rx_packets=12345")
            got, rows = agreed(sw, db)
            p2 = uuid_of(rows, "p2")
            assert got[p2]["rx_dropped"] == 7 and got[p2]["rx_packets"] == 12345
            sw.vsctl("--no-wait", "remove", "Interface", "p2", "statistics", "rx_dropped")
            got, rows = agreed(sw, db)
            assert "rx_dropped" not in rows[p2]["statistics"] and "rx_dropped" not in got[p2]
            assert got[p2] == rows[p2]["statistics"] and got[p2]["rx_packets"] == 12345
            sw.vsctl("--no-wait", "clear", "Interface", "p2", "statistics")
            got, rows = agreed(sw, db)
            assert rows[p2]["statistics"] == {} and not got.get(p2)


def ovsdb_server_appctl(sw: SandboxSwitch, *args: str) -> str:
    pid = int((sw.dir / "ovsdb-server.pid").read_text())
    ctl = sw.dir / f"ovsdb-server.{pid}.ctl"
    return subprocess.run(
        ["ovs-appctl", "-t", str(ctl), "--timeout=10", *args], check=True, capture_output=True, text=True, timeout=15
    ).stdout


def test_counters_come_back_after_the_connection_drops(fresh_sandbox: SandboxSwitch) -> None:
    """``ovsdb-server/reconnect`` drops the monitor's connection: once reconnected, the counters come from a new
    monitor request and equal ovs-vsctl's again, also after the statistics change."""
    sw = fresh_sandbox
    with opened(sw) as db:
        before, _ = agreed(sw, db)
        monitor = db._counters
        assert monitor is not None
        seqno = monitor._session.get_seqno()
        ovsdb_server_appctl(sw, "ovsdb-server/reconnect")
        deadline = time.monotonic() + 20
        while monitor._session.get_seqno() == seqno or not monitor.ready:  # dropped, then monitored anew
            try:
                db.refresh()
            except SourceError as exc:
                assert "reconnect" in str(exc)
            assert time.monotonic() < deadline, "the counter monitor never reconnected"
            time.sleep(0.05)
        got, rows = agreed(sw, db)
        assert got is not before
        rx = receive(sw, "p3", "p3", 2)
        while True:
            got, rows = agreed(sw, db)
            if got.get(uuid_of(rows, "p3"), {}).get("rx_packets", 0) >= rx:
                break
            assert time.monotonic() < deadline + 20, "the reconnected monitor never saw p3's new rx_packets"
