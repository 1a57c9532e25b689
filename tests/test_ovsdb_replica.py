"""The OVSDB replica's rows follow the database as ``ovs-vsctl`` reads it, while converting only the cells
that changed: a changed cell shows its new value, an unchanged row is the same object as before. The
collectors fed by it keep what is unchanged the same way: their samples, down to the list of a round."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from ovstop.collect.base import Sources, Tables
from ovstop.collect.bridge import BridgeCollector
from ovstop.collect.interface import InterfaceCollector
from ovstop.collect.tunnel import TunnelCollector
from ovstop.model.labels import LabelMap
from ovstop.model.metric import Sample
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sources import jsonrpc
from ovstop.sources.ovsdb import OvsdbSource


def vsctl_rows(sw: SandboxSwitch, table: str, columns: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``ovs-vsctl --format=json list`` as {uuid: {column: value}} with OVSDB's JSON notation unwrapped."""
    doc = json.loads(sw.vsctl("--format=json", f"--columns=_uuid,{','.join(columns)}", "list", table))

    def plain(value: Any) -> Any:
        if isinstance(value, list) and value and value[0] == "map":
            return {k: plain(v) for k, v in value[1]}
        if isinstance(value, list) and value and value[0] == "set":
            return [plain(v) for v in value[1]]
        if isinstance(value, list) and value and value[0] == "uuid":
            return value[1]
        return value

    return {row[0][1]: {c: plain(v) for c, v in zip(columns, row[1:], strict=True)} for row in doc["data"]}


def fresh_rows(db: OvsdbSource, table: str) -> list[dict[str, Any]]:
    db.refresh()
    return db.rows(table)


def test_changed_cells_follow_the_database_and_unchanged_rows_are_kept(fresh_sandbox: SandboxSwitch) -> None:
    sw = fresh_sandbox
    db = OvsdbSource(sw.db_remote)
    try:
        before = {r["name"]: r for r in fresh_rows(db, "Interface")}
        target = sorted(before)[0]
        sw.vsctl("set", "Interface", target, "external_ids:ovstop-test=1")
        deadline = time.monotonic() + 10
        while True:
            after = {r["name"]: r for r in fresh_rows(db, "Interface")}
            if after[target]["external_ids"].get("ovstop-test") == "1":
                break
            assert time.monotonic() < deadline, "the replica never saw the change"
            time.sleep(0.1)
        # The update came through ovstop's connection (the standard library's JSON decoder), adopted from the
        # session's own once it had read the initial contents.
        assert type(db._idl._session.rpc) is jsonrpc.Connection  # type: ignore[union-attr]
        truth = vsctl_rows(sw, "Interface", ("name", "external_ids", "type", "ofport"))
        for row in after.values():
            want = truth[row["_uuid"]]
            assert row["external_ids"] == want["external_ids"]
            assert (row["type"], row["ofport"]) == (want["type"], want["ofport"])
        assert after[target] is not before[target]
        unchanged = [n for n in before if n != target and before[n] == after[n]]
        assert unchanged, "every interface's row changed: nothing to compare"
        assert all(after[n] is before[n] for n in unchanged)
        ports = {r["_uuid"]: r for r in fresh_rows(db, "Port")}
        port_truth = vsctl_rows(sw, "Port", ("name", "interfaces"))
        assert {u: sorted(r["interfaces"]) for u, r in ports.items()} == {
            u: sorted(r["interfaces"] if isinstance(r["interfaces"], list) else [r["interfaces"]])
            for u, r in port_truth.items()
        }
    finally:
        db.close()


def test_an_unchanged_replica_gives_the_same_list_of_samples(fresh_sandbox: SandboxSwitch) -> None:
    sw = fresh_sandbox
    db = OvsdbSource(sw.db_remote)
    collectors = (InterfaceCollector(), BridgeCollector(), TunnelCollector())
    sources = Sources(ovsdb=db)
    try:
        for _ in range(50):  # statistics land every few seconds: two rounds with nothing new in between
            db.refresh()
            generation = db.generation
            first = [c.collect(sources, Tables()) for c in collectors]
            db.refresh()
            if db.generation == generation:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the replica changed between every two rounds")
        tables = Tables()
        second = [c.collect(sources, tables) for c in collectors]
        assert all(a is b for a, b in zip(first, second, strict=True))
        truth = vsctl_rows(sw, "Interface", ("name", "type"))
        # The side outputs are still put into the round's tables.
        assert sorted(r["interface"] for r in tables.rows["interfaces"]) == sorted(r["name"] for r in truth.values())
        tunnels = sorted(r["name"] for r in truth.values() if r["type"] in ("geneve", "vxlan", "gre"))
        assert tunnels and sorted(r["tunnel"] for r in tables.rows["tunnels"]) == tunnels
        assert sorted(r["bridge"] for r in tables.rows["bridges"]) == sorted(sw.vsctl("list-br").split())
    finally:
        db.close()


def by_interface(samples: list[Sample], metric: str) -> dict[str, Sample]:
    return {dict(s.labels)["interface"]: s for s in samples if s.spec.name == metric}


def test_a_change_gives_fresh_samples_and_keeps_the_unchanged_ones(fresh_sandbox: SandboxSwitch) -> None:
    """mtu, ofport and an external_ids label of one interface, a port added and one removed: the samples
    say what ovs-vsctl says, and every identity or state series whose labels and value are unchanged is last
    round's object."""
    sw = fresh_sandbox
    db = OvsdbSource(sw.db_remote)
    collector = InterfaceCollector(LabelMap.from_dict({"names": ["vpc"], "external_ids": {"vpc": "vpc"}}))
    sources = Sources(ovsdb=db)
    try:
        db.refresh()
        before = collector.collect(sources, Tables())
        target, removed = sw.vsctl("list-ports", "br0").split()[:2]
        sw.vsctl("set", "Interface", target, "mtu_request=1400", "ofport_request=77", "external_ids:vpc=blue")
        sw.vsctl("add-port", "br0", "added0", "--", "set", "Interface", "added0", "type=dummy")
        sw.vsctl("del-port", "br0", removed)
        deadline = time.monotonic() + 10
        while True:
            db.refresh()
            after = collector.collect(sources, Tables())
            info = by_interface(after, "ovs_vswitchd_interface_info")
            if "added0" in info and dict(info[target].labels)["ofport"] == "77":
                break
            assert time.monotonic() < deadline, "the collector never saw the change"
            time.sleep(0.1)
        truth = vsctl_rows(sw, "Interface", ("name", "mtu", "ofport", "external_ids"))
        names = {r["name"] for r in truth.values()}
        assert set(info) == names and removed not in names
        mtu = by_interface(after, "ovs_vswitchd_interface_mtu")
        assert {n: s.value for n, s in mtu.items()} == {r["name"]: r["mtu"] for r in truth.values() if r["mtu"] != []}
        assert mtu[target].value == 1400
        for row in truth.values():
            labels = dict(info[row["name"]].labels)
            assert (labels["ofport"], labels["vpc"]) == (str(row["ofport"]), row["external_ids"].get("vpc", ""))
        assert dict(by_interface(after, "ovs_vswitchd_interface_admin_state")[target].labels)["vpc"] == "blue"
        # The identity and state samples (the traffic is a block of columns, which the store compares by value).
        old = {s.key: s for s in before.lists[0]}
        kept = [s for s in after.lists[0] if s.key in old and old[s.key].value == s.value]
        assert kept and all(s is old[s.key] for s in kept)
        others = names - {target, "added0"}
        assert {n for n, s in info.items() if s is old.get(s.key)} == others
    finally:
        db.close()


def test_every_monitored_cell_reads_as_ovs_vsctl_lists_it(fresh_sandbox: SandboxSwitch) -> None:
    """Every table and column the replica monitors, cell by cell, against ``ovs-vsctl --format=json list``: maps
    (external_ids, other_config), sets of references, optional scalars (one value or none)."""
    sw = fresh_sandbox
    sw.vsctl("set", "Interface", "p1", "external_ids:vm=a", "mtu_request=1400")
    sw.vsctl("set", "Port", "p2", "tag=7")
    db = OvsdbSource(sw.db_remote)
    try:
        deadline = time.monotonic() + 10
        while not any(r.get("tag") == 7 for r in fresh_rows(db, "Port")):
            assert time.monotonic() < deadline, "the replica never saw the tag"
            time.sleep(0.1)
        compared = 0
        for table, columns in db.columns.items():
            truth = vsctl_rows(sw, table, columns)
            rows = {r["_uuid"]: r for r in fresh_rows(db, table)}
            assert rows.keys() == truth.keys(), table
            for row_uuid, row in rows.items():
                for column in columns:
                    want, got = truth[row_uuid][column], row[column]
                    if isinstance(got, list):  # a set: ovs-vsctl lists one member bare
                        want = sorted(want if isinstance(want, list) else [want])
                        got = sorted(got)
                    elif got is None:  # an optional scalar without a value: an empty set to ovs-vsctl
                        want = None if want == [] else want
                    assert got == want, (table, column, got, want)
                    compared += 1
        assert compared > 100
    finally:
        db.close()
