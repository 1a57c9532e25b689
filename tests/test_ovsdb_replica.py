"""The OVSDB replica's rows follow the database as ``ovs-vsctl`` reads it, while converting only the cells
that changed: a changed cell shows its new value, an unchanged row is the same object as before."""

from __future__ import annotations

import json
import time
from typing import Any

from ovstop.sandbox.switch import SandboxSwitch
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
        truth = vsctl_rows(sw, "Interface", ("name", "external_ids", "type", "ofport"))
        for row in after.values():
            want = truth[row["_uuid"]]
            assert row["external_ids"] == want["external_ids"]
            assert (row["type"], row["ofport"]) == (want["type"], want["ofport"])
        assert after[target] is not before[target]
        unchanged = [n for n in before if n != target and before[n]["statistics"] == after[n]["statistics"]]
        assert unchanged, "every interface's statistics moved: nothing to compare"
        assert all(after[n] is before[n] for n in unchanged if before[n]["external_ids"] == after[n]["external_ids"])
        ports = {r["_uuid"]: r for r in fresh_rows(db, "Port")}
        port_truth = vsctl_rows(sw, "Port", ("name", "interfaces"))
        assert {u: sorted(r["interfaces"]) for u, r in ports.items()} == {
            u: sorted(r["interfaces"] if isinstance(r["interfaces"], list) else [r["interfaces"]])
            for u, r in port_truth.items()
        }
    finally:
        db.close()
