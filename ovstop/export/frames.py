"""Snapshots as compact frames for ``--record``: values, not histories, and only what changed.

A recording that writes every snapshot whole repeats each series' name, labels, help text and 120-sample
history every second (about 90 KB/s on the 4-port sandbox). A frame holds what cannot be recomputed:

- a *key frame* (the first of a recording file, and whenever the set of series changes): the specs, the
  series keys in snapshot order and their values, every table, the health and the meta;
- a *delta frame*: only the values that changed (by index into the key frame's series), the tables that
  changed (datapath flows as new rows, gone ufids and changed counters), health and meta when changed.

Rates, interval histograms and histories are rebuilt on replay by the same :class:`MetricStore` that builds
them live, and per-flow rates, first-seen times and flow changes by a :class:`FlowFollower` (so the
``flow_changes`` table is not written), so a replay shows what the live run showed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ovstop.errors import OvstopError
from ovstop.export.snapshot import (
    health_from_json,
    health_to_json,
    spec_from_json,
    spec_to_json,
    value_from_json,
    value_to_json,
)
from ovstop.model.flows import CHANGES, FLOWS, FlowFollower, dumped
from ovstop.model.metric import Labels, MetricSpec, Sample
from ovstop.model.store import MetricStore, Snapshot, SourceHealth

FORMAT = "ovstop-frame"
VERSION = 1
_FLOW_STATE = ("packets", "bytes", "used_s", "used_at")
"""What changes in a flow's row. A flow that moved is written as what its counters gained and its
``used_s``; kept rows hold ``used_at`` (frame time minus ``used_s``) instead, which stays put while no
packet arrives, so a replay shows an idle flow's ``used_s`` growing (to within a collection's jitter)
without a line about it in every frame."""
Key = tuple[str, Labels]


def _used_at(at: float, used_s: float | None) -> float | None:
    return None if used_s is None else at - used_s


def _live_row(row: Mapping[str, Any], at: float) -> dict[str, Any]:
    live = {k: v for k, v in row.items() if k != "used_at"}
    used = row.get("used_at")
    live["used_s"] = None if used is None else round(at - used, 3)
    return live


class FrameEncoder:
    """Turns consecutive snapshots into frames; :meth:`restart` makes the next one a key frame."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self._keys: list[Key] = []
        self._values: list[Any] = []
        self._tables: dict[str, Any] = {}
        self._flows: dict[str, dict[str, Any]] = {}
        self._health: dict[str, Any] = {}
        self._meta: dict[str, Any] = {}

    def encode(self, snap: Snapshot) -> dict[str, Any]:
        series = snap.value_series  # a frame holds values: rates and histories are made again on replay
        keys = [(s.spec.name, s.labels) for s in series]
        values = [_compact(value_to_json(s.value)) for s in series]
        key_frame = keys != self._keys
        frame: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "seq": snap.seq,
            "timestamp": snap.timestamp,
            "interval": snap.interval,
            "collect_seconds": snap.collect_seconds,
        }
        if key_frame:
            specs: dict[str, MetricSpec] = {}
            for s in series:
                specs.setdefault(s.spec.name, s.spec)
            frame["specs"] = {name: spec_to_json(spec) for name, spec in specs.items()}
            frame["series"] = [[name, dict(labels)] for name, labels in keys]
            frame["values"] = values
            self._tables, self._health, self._meta = {}, {}, {}
        else:
            # Whole numbers (counters, mostly) as differences: small numbers that compress well.
            changed: list[list[Any]] = []
            grew: list[list[Any]] = []
            for i, (v, old) in enumerate(zip(values, self._values, strict=True)):
                if v != old:
                    if isinstance(v, int) and isinstance(old, int):
                        grew.append([i, v - old])
                    elif isinstance(v, dict) and isinstance(old, dict) and v["bounds"] == old["bounds"]:
                        # A histogram with the same buckets: what each bucket gained, and the new sum.
                        grew.append([i, [a - b for a, b in zip(v["counts"], old["counts"], strict=True)], v["sum"]])
                    else:
                        changed.append([i, v])
            frame["changed"], frame["grew"] = changed, grew
        stale = [i for i, s in enumerate(series) if s.stale]
        if stale:
            frame["stale"] = stale
        self._keys, self._values = keys, values
        tables = self._encode_tables(snap.tables, key_frame, snap.timestamp)
        if tables or key_frame:
            frame["tables"] = tables
        # A source's last_ok is the time of the last round it answered: the frame's time while it is up.
        health = {
            k: {f: v for f, v in h.items() if f != "last_ok" or not h["up"]}
            for k, h in health_to_json(snap.health).items()
        }
        if key_frame or health != self._health:
            frame["health"] = self._health = health
        meta = dict(snap.meta)
        if key_frame or meta != self._meta:
            frame["meta"] = self._meta = meta
        return frame

    def _encode_tables(
        self, tables: Mapping[str, Sequence[Mapping[str, Any]]], key_frame: bool, at: float
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        tables = {name: rows for name, rows in tables.items() if name != CHANGES}
        for name, rows in tables.items():
            if name == FLOWS:
                out[name] = self._encode_flows(rows, key_frame or FLOWS not in self._tables, at)
            elif key_frame or self._tables.get(name) != rows:
                out[name] = rows
        gone = [n for n in self._tables if n not in tables]
        if gone:
            out["-"] = gone
        self._tables = dict(tables)
        return out

    def _encode_flows(self, rows: Sequence[Mapping[str, Any]], whole: bool, at: float) -> dict[str, Any]:
        """Datapath flows as edits of the last frame's list: rows gone and counters moved by their index in
        it (a ufid is 36 random characters that compress badly), and new rows whole."""
        before = {} if whole else self._flows
        index = {ufid: i for i, ufid in enumerate(before)}
        seen: set[str] = set()
        new: list[dict[str, Any]] = []
        moved: list[list[Any]] = []
        for row in rows:
            clean = dumped(row)
            ufid = str(clean.get("ufid") or "")
            prev = before.get(ufid) if ufid else None
            if prev is None or ufid in seen or _identity(prev) != _identity(clean):
                new.append(clean)
            elif prev["packets"] != clean["packets"] or prev["bytes"] != clean["bytes"]:
                moved.append(
                    [index[ufid], clean["packets"] - prev["packets"], clean["bytes"] - prev["bytes"], clean["used_s"]]
                )
            if ufid:
                seen.add(ufid)
        frame: dict[str, Any] = {"new": new, "moved": moved}
        if whole:
            frame["whole"] = True
        else:
            frame["gone"] = [i for ufid, i in index.items() if ufid not in seen]
        self._flows = apply_flows(before, frame, at)
        return frame


def apply_flows(before: dict[str, dict[str, Any]], frame: Mapping[str, Any], at: float) -> dict[str, dict[str, Any]]:
    """The flow list (by ufid, in a stable order) after one frame's edits; the encoder and the decoder both
    keep theirs with this, so indices mean the same on both sides."""
    keys = list(before)
    flows = {} if frame.get("whole") else dict(before)
    for i, *counters in frame["moved"]:
        row = flows[keys[i]]
        packets, nbytes, used_s = counters
        flows[keys[i]] = {
            **row,
            "packets": row["packets"] + packets,
            "bytes": row["bytes"] + nbytes,
            "used_at": _used_at(at, used_s),
        }
    for i in frame.get("gone", ()):
        del flows[keys[i]]
    for n, row in enumerate(frame["new"]):
        kept = {k: v for k, v in row.items() if k != "used_s"}
        kept["used_at"] = _used_at(at, row.get("used_s"))
        flows[str(row.get("ufid") or f"#{n}")] = kept  # a row without ufid lives one frame
    return flows


def _compact(value: Any) -> Any:
    """Whole numbers without ".0" (a third of a counter's bytes); read back as floats like any number."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _identity(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _FLOW_STATE}


class FrameDecoder:
    """Rebuilds snapshots from frames, with rates and histories recomputed by a :class:`MetricStore`."""

    def __init__(self, history: int = 120) -> None:
        self._store = MetricStore(history=history)
        self._flows_followed = FlowFollower()
        self._specs: dict[str, MetricSpec] = {}
        self._keys: list[Key] = []
        self._specs_of: list[MetricSpec] = []
        self._values: list[Any] = []
        self._tables: dict[str, Sequence[Mapping[str, Any]]] = {}
        self._flows: dict[str, dict[str, Any]] = {}
        self._health: dict[str, SourceHealth] = {}
        self._meta: dict[str, Any] = {}
        self._clock = 0.0

    def decode(self, frame: Mapping[str, Any]) -> Snapshot:
        if frame.get("format") != FORMAT or frame.get("version") != VERSION:
            raise OvstopError(f"not an ovstop frame of version {VERSION}")
        try:
            return self._decode(frame)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise OvstopError(f"damaged ovstop frame: {exc!r}") from None

    def _decode(self, frame: Mapping[str, Any]) -> Snapshot:
        if "series" in frame:
            self._specs.update({n: spec_from_json(n, d) for n, d in frame["specs"].items()})
            self._keys = [(name, tuple(sorted(labels.items()))) for name, labels in frame["series"]]
            self._specs_of = [self._specs[name] for name, _ in self._keys]
            self._values = list(frame["values"])
        elif not self._keys:
            raise ValueError("a delta frame before any key frame")
        else:
            for index, value in frame["changed"]:
                self._values[index] = value
            for index, delta, *total in frame["grew"]:
                old = self._values[index]
                if isinstance(delta, list):
                    counts = [a + b for a, b in zip(old["counts"], delta, strict=True)]
                    self._values[index] = {"bounds": old["bounds"], "counts": counts, "sum": total[0]}
                else:
                    self._values[index] = old + delta
        if "health" in frame:
            self._health = health_from_json(frame["health"])
        self._health = {
            k: dataclasses.replace(h, last_ok=frame["timestamp"]) if h.up else h for k, h in self._health.items()
        }
        if "meta" in frame:
            self._meta = dict(frame["meta"])
        self._decode_tables(frame.get("tables", {}), "series" in frame, float(frame["timestamp"]))
        samples = []
        for spec, (_, labels), value in zip(self._specs_of, self._keys, self._values, strict=True):
            decoded = value_from_json(value)
            if decoded is not None:
                samples.append(Sample(spec, labels, decoded))
        # Rates are recomputed over the recorded intervals (monotonic, as live), not the wall-clock stamps.
        interval = frame.get("interval")
        self._clock += float(interval) if interval is not None else 1.0  # any start: only differences count
        when = self._clock
        tables = dict(self._tables)
        if FLOWS in tables:
            tables.update(self._flows_followed.follow(tables[FLOWS], when, float(frame["timestamp"])).tables())
        snap = self._store.update(
            [("", samples)],
            when,
            float(frame["timestamp"]),
            self._health,
            tables,
            self._meta,
            collect_seconds=float(frame.get("collect_seconds", 0.0)),
        )
        # In the recorded order (the store sorts by its own tree order), stale ones marked as recorded.
        by_key = {(s.spec.name, s.labels): s for s in snap.series}
        stale = set(frame.get("stale", ()))
        series = tuple(
            dataclasses.replace(by_key[k], stale=True) if i in stale else by_key[k]
            for i, k in enumerate(self._keys)
            if k in by_key
        )
        return dataclasses.replace(snap, seq=int(frame["seq"]), series=series)

    def _decode_tables(self, tables: Mapping[str, Any], key_frame: bool, at: float) -> None:
        if key_frame:
            self._tables = {}
        for name in tables.get("-", ()):
            self._tables.pop(name, None)
        for name, rows in tables.items():
            if name == FLOWS:
                self._tables[name] = self._decode_flows(rows, at)
            elif name != "-":
                self._tables[name] = rows

    def _decode_flows(self, frame: Mapping[str, Any], at: float) -> list[dict[str, Any]]:
        self._flows = apply_flows(self._flows, frame, at)
        return [_live_row(r, at) for r in self._flows.values()]
