"""Snapshots as compact frames for ``--record``: values, not histories, and only what changed.

A recording that writes every snapshot whole repeats each series' name, labels, help text and 120-sample
history every second (about 90 KB/s on the 4-port sandbox). A frame holds what cannot be recomputed:

- a *key frame* (the first of a recording file, even one without series, or when the series were
  reordered): the specs, the series keys in snapshot order and their values, every table, the health and the
  meta;
- a *delta frame*: the series that came and went (an ``edit`` of the last frame's list), the values that
  changed (by index into that list), the tables that changed (datapath flows as new rows, gone rows and
  moved counters; other tables as the rows' changed fields when their rows kept their count and fields),
  health and meta when changed.

Version 2 (this encoder) added the series edit and the tables' row edits, keeps flows by their identity
(datapath, PMD thread, ufid: one megaflow has a row per PMD thread that installed it) and writes moved flows in
index order as gaps, their bytes left out when the flow's bytes per packet stay the same whole number; version
1 frames (flows by ufid alone, absolute indices, every counter) still decode.

Rates, interval histograms and histories are rebuilt on replay by the same :class:`MetricStore` that builds
them live, and per-flow rates, first-seen times and flow changes by a :class:`FlowFollower` (so the
``flow_changes`` table is not written), so a replay shows what the live run showed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
from ovstop.model.flows import CHANGES, FLOWS, FlowFollower, FlowId, dumped, flow_id
from ovstop.model.metric import Labels, MetricSpec, Sample
from ovstop.model.series import Series
from ovstop.model.store import MetricStore, Snapshot, SourceHealth

FORMAT = "ovstop-frame"
VERSION = 2
VERSIONS = (1, 2)
_FLOW_STATE = ("packets", "bytes", "used_s", "used_at")
"""What changes in a flow's row. A flow that moved is written as what its counters gained and its
``used_s``; kept rows hold ``used_at`` (frame time minus ``used_s``) instead, which stays put while no
packet arrives, so a replay shows an idle flow's ``used_s`` growing (to within a collection's jitter)
without a line about it in every frame."""
Key = tuple[str, Labels]
FlowKey = FlowId | str
"""A flow in a frame's list: its identity (version 2), or its ufid (version 1; ``#n`` for the n-th new row
without one, which lives one frame)."""


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
        self._keyed = False  # a key frame was written (since the start or the restart)
        self._keys: list[Key] = []
        self._spec_names: set[str] = set()
        self._values: list[Any] = []
        self._tables: dict[str, Any] = {}
        self._flows: dict[FlowKey, dict[str, Any]] = {}
        self._health: dict[str, Any] = {}
        self._meta: dict[str, Any] = {}

    def encode(self, snap: Snapshot) -> dict[str, Any]:
        series = snap.value_series  # a frame holds values: rates and histories are made again on replay
        keys = [(s.spec.name, s.labels) for s in series]
        values = [_compact(value_to_json(s.value)) for s in series]
        same = keys == self._keys  # once: 11,000 keys at 1,000 ports
        edit = None if same or not self._keyed else series_edit(self._keys, keys)
        key_frame = not self._keyed or (not same and edit is None)
        frame: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "seq": snap.seq,
            "timestamp": snap.timestamp,
            "interval": snap.interval,
            "collect_seconds": snap.collect_seconds,
        }
        if key_frame:
            self._keyed = True
            self._spec_names = set()
            frame["specs"] = self._new_specs(series)
            frame["series"] = [[name, dict(labels)] for name, labels in keys]
            frame["values"] = values
            self._tables, self._health, self._meta = {}, {}, {}
        else:
            before = self._values
            if edit is not None:
                edit["specs"] = self._new_specs(series[i] for i, *_ in edit["added"])
                frame["edit"] = edit
                before = realigned(self._keys, self._values, keys)
            # Whole numbers (counters, mostly) as differences: small numbers that compress well.
            changed: list[list[Any]] = []
            grew: list[list[Any]] = []
            for i, (v, old) in enumerate(zip(values, before, strict=True)):
                if v != old:
                    if isinstance(v, int) and isinstance(old, int):
                        grew.append([i, v - old])
                    elif isinstance(v, dict) and isinstance(old, dict) and v["bounds"] == old["bounds"]:
                        # A histogram with the same buckets: what each bucket gained, and the new sum.
                        grew.append([i, [a - b for a, b in zip(v["counts"], old["counts"], strict=True)], v["sum"]])
                    else:  # other numbers, histograms whose buckets changed, series the edit added
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

    def _new_specs(self, series: Iterable[Series]) -> dict[str, Any]:
        """The specs of ``series`` whose names the frames since the key frame have not yet described."""
        specs: dict[str, Any] = {}
        for s in series:
            if s.spec.name not in self._spec_names:
                self._spec_names.add(s.spec.name)
                specs[s.spec.name] = spec_to_json(s.spec)
        return specs

    def _encode_tables(
        self, tables: Mapping[str, Sequence[Mapping[str, Any]]], key_frame: bool, at: float
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        tables = {name: rows for name, rows in tables.items() if name != CHANGES}
        for name, rows in tables.items():
            if name == FLOWS:
                out[name] = self._encode_flows(rows, key_frame or FLOWS not in self._tables, at)
            elif key_frame or name not in self._tables:
                out[name] = rows
            elif self._tables[name] != rows:
                edits = row_edits(self._tables[name], rows)
                out[name] = rows if edits is None else {"rows": edits}
        gone = [n for n in self._tables if n not in tables]
        if gone:
            out["-"] = gone
        self._tables = dict(tables)
        return out

    def _encode_flows(self, rows: Sequence[Mapping[str, Any]], whole: bool, at: float) -> dict[str, Any]:
        """Datapath flows as edits of the last frame's list: rows gone and counters moved by their place in it
        (a ufid is 36 random characters that compress badly), and new rows whole."""
        before = {} if whole else self._flows
        index = {key: i for i, key in enumerate(before)}
        seen: set[FlowKey] = set()
        new: list[dict[str, Any]] = []
        moved: list[tuple[int, int, int, Any]] = []
        for row in rows:
            clean = dumped(row)
            key = flow_id(clean)
            prev = before.get(key)
            if prev is None or key in seen or _identity(prev) != _identity(clean):
                new.append(clean)
            elif prev["packets"] != clean["packets"] or prev["bytes"] != clean["bytes"]:
                moved.append(
                    (index[key], clean["packets"] - prev["packets"], clean["bytes"] - prev["bytes"], clean["used_s"])
                )
            seen.add(key)
        frame: dict[str, Any] = {"new": new, "moved": _moved_rows(sorted(moved), list(before.values()))}
        if whole:
            frame["whole"] = True
        else:
            frame["gone"] = [i for key, i in index.items() if key not in seen]
        self._flows = apply_flows(before, frame, at)
        return frame


def _moved_rows(moved: Sequence[tuple[int, int, int, Any]], rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """Moved flows (by index order) as written: the index as the gap from the last one, and the bytes left out
    when they are the packets times the flow's bytes per packet so far, a whole number (most flows carry one
    kind of packet)."""
    out: list[list[Any]] = []
    last = 0
    for i, packets, nbytes, used_s in moved:
        size = _packet_size(rows[i])
        if size is not None and nbytes == packets * size:
            out.append([i - last, packets, used_s])
        else:
            out.append([i - last, packets, nbytes, used_s])
        last = i
    return out


def _packet_size(row: Mapping[str, Any]) -> int | None:
    packets, nbytes = row["packets"], row["bytes"]
    return nbytes // packets if packets and nbytes % packets == 0 else None


def _moved_counters(
    moved: Sequence[Sequence[Any]], rows: Sequence[Mapping[str, Any]], gaps: bool
) -> Iterator[tuple[int, int, int, Any]]:
    """A frame's moved flows as (index, packets, bytes, used_s), undoing :func:`_moved_rows` (version 1 wrote
    them as they are)."""
    i = 0
    for row in moved:
        i = _index(i + row[0] if gaps else row[0], len(rows))
        if len(row) == 3:
            size = _packet_size(rows[i])
            if size is None:
                raise ValueError(f"moved flow {i} without bytes has no one packet size")
            yield i, row[1], row[1] * size, row[2]
        else:
            yield i, row[1], row[2], row[3]


def apply_flows(
    before: dict[FlowKey, dict[str, Any]], frame: Mapping[str, Any], at: float, version: int = VERSION
) -> dict[FlowKey, dict[str, Any]]:
    """The flow list (by :data:`FlowKey`, in a stable order) after one frame's edits; the encoder and the
    decoder both keep theirs with this, so indices mean the same on both sides."""
    keys = list(before)
    rows = list(before.values())
    flows = {} if frame.get("whole") else dict(before)
    for i, packets, nbytes, used_s in _moved_counters(frame["moved"], rows, gaps=version >= 2):
        row = flows[keys[i]]
        flows[keys[i]] = {
            **row,
            "packets": row["packets"] + packets,
            "bytes": row["bytes"] + nbytes,
            "used_at": _used_at(at, used_s),
        }
    for i in frame.get("gone", ()):
        del flows[keys[_index(i, len(keys))]]
    for n, row in enumerate(frame["new"]):
        kept = {k: v for k, v in row.items() if k != "used_s"}
        kept["used_at"] = _used_at(at, row.get("used_s"))
        flows[flow_id(row) if version >= 2 else str(row.get("ufid") or f"#{n}")] = kept
    return flows


def _index(i: Any, length: int) -> int:
    """``i`` when it is a place in a list of ``length`` (a damaged frame's -1 would read the last one)."""
    if type(i) is not int or not 0 <= i < length:
        raise IndexError(f"index {i!r} outside 0..{length - 1}")
    return i


def series_edit(old: Sequence[Key], new: Sequence[Key]) -> dict[str, Any] | None:
    """``new`` as ``old`` less some series plus others at their places (``gone``: indices in ``old``;
    ``added``: [index in ``new``, name, labels]), or None when that does not give ``new`` (reordered, say)."""
    kept, known = set(new), set(old)
    edit: dict[str, Any] = {
        "gone": [i for i, key in enumerate(old) if key not in kept],
        "added": [[i, name, dict(labels)] for i, (name, labels) in enumerate(new) if (name, labels) not in known],
    }
    return edit if edited_keys(old, edit) == list(new) else None


def edited_keys(old: Sequence[Key], edit: Mapping[str, Any]) -> list[Key]:
    """The series keys after a frame's edit (see :func:`series_edit`)."""
    gone = {_index(i, len(old)) for i in edit["gone"]}
    keys = [key for i, key in enumerate(old) if i not in gone]
    for i, name, labels in edit["added"]:
        keys.insert(_index(i, len(keys) + 1), _series_key(name, labels))
    return keys


def _series_key(name: str, labels: Mapping[str, str]) -> Key:
    """A series' key from a frame's ``[name, labels]`` (labels sorted, as a snapshot holds them)."""
    return name, tuple(sorted(labels.items()))


def realigned(old: Sequence[Key], values: Sequence[Any], new: Sequence[Key]) -> list[Any]:
    """``values`` (of ``old``) in the order of ``new``; None for series new there (a value the frame then
    writes, unless it is None itself)."""
    by_key = dict(zip(old, values, strict=True))
    return [by_key.get(key) for key in new]


def row_edits(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> list[list[Any]] | None:
    """A table as the fields of its rows that changed ([index, {field: value}]), or None when the rows are not
    the same count with the same fields (then the table is written whole)."""
    if len(old) != len(new):
        return None
    edits: list[list[Any]] = []
    for i, (before, after) in enumerate(zip(old, new, strict=True)):
        if before.keys() != after.keys():
            return None
        changed = {k: v for k, v in after.items() if before[k] != v}
        if changed:
            edits.append([i, changed])
    return edits


def apply_row_edits(rows: Sequence[Mapping[str, Any]], edits: Sequence[Sequence[Any]]) -> list[Mapping[str, Any]]:
    """The table after :func:`row_edits`."""
    out = list(rows)
    for i, changed in edits:
        i = _index(i, len(out))
        out[i] = {**out[i], **changed}
    return out


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
        self._keyed = False
        self._keys: list[Key] = []
        self._specs_of: list[MetricSpec] = []
        self._values: list[Any] = []
        self._tables: dict[str, Sequence[Mapping[str, Any]]] = {}
        self._flows: dict[FlowKey, dict[str, Any]] = {}
        self._health: dict[str, SourceHealth] = {}
        self._meta: dict[str, Any] = {}
        self._clock = 0.0

    def decode(self, frame: Mapping[str, Any]) -> Snapshot:
        version = frame.get("version")
        if frame.get("format") != FORMAT or type(version) is not int or version not in VERSIONS:
            raise OvstopError(f"not an ovstop frame of version {' or '.join(map(str, VERSIONS))}")
        try:
            return self._decode(frame, version)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, ArithmeticError) as exc:
            raise OvstopError(f"damaged ovstop frame: {exc!r}") from None

    def _decode(self, frame: Mapping[str, Any], version: int) -> Snapshot:
        if "series" in frame:
            keys = [_series_key(name, labels) for name, labels in frame["series"]]
            self._set_keys(keys, list(frame["values"]), frame["specs"])
            self._keyed = True
        elif not self._keyed:
            raise ValueError("a delta frame before any key frame")
        else:
            if "edit" in frame:
                keys = edited_keys(self._keys, frame["edit"])
                self._set_keys(keys, realigned(self._keys, self._values, keys), frame["edit"]["specs"])
            for index, value in frame["changed"]:
                self._values[_index(index, len(self._values))] = value
            for index, delta, *total in frame["grew"]:
                index = _index(index, len(self._values))
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
        self._decode_tables(frame.get("tables", {}), "series" in frame, float(frame["timestamp"]), version)
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
        stale = {_index(i, len(self._keys)) for i in frame.get("stale", ())}
        series = tuple(
            dataclasses.replace(by_key[k], stale=True) if i in stale else by_key[k]
            for i, k in enumerate(self._keys)
            if k in by_key
        )
        return dataclasses.replace(snap, seq=int(frame["seq"]), series=series)

    def _set_keys(self, keys: list[Key], values: list[Any], specs: Mapping[str, Any]) -> None:
        """The series list from here on, its values and the specs of names new in it."""
        self._specs.update({n: spec_from_json(n, d) for n, d in specs.items()})
        self._keys, self._values = keys, values
        self._specs_of = [self._specs[name] for name, _ in keys]

    def _decode_tables(self, tables: Mapping[str, Any], key_frame: bool, at: float, version: int) -> None:
        if key_frame:
            self._tables = {}
        for name in tables.get("-", ()):
            self._tables.pop(name, None)
        for name, rows in tables.items():
            if name == FLOWS:
                self._flows = apply_flows(self._flows, rows, at, version)
                self._tables[name] = [_live_row(r, at) for r in self._flows.values()]
            elif isinstance(rows, Mapping):
                self._tables[name] = apply_row_edits(self._tables[name], rows["rows"])
            elif name != "-":
                self._tables[name] = rows
