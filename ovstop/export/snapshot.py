"""The whole state as versioned JSON, and back.

The document carries each metric's description once (``specs``) and then the series, so a snapshot
read back (``--replay`` of an ovstop recording) rebuilds the same :class:`Snapshot` the UI draws.
Infinite histogram bounds are written as the string ``"+Inf"`` (JSON has no infinity). Typed table rows
(datapath flows and flow changes, :mod:`ovstop.model.flows`) are written as objects of their fields and read
back typed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ovstop import fileio
from ovstop.errors import OvstopError
from ovstop.model import flows
from ovstop.model.metric import Histogram, Kind, MetricSpec, Value
from ovstop.model.store import Series, Snapshot, SourceHealth

FORMAT = "ovstop-snapshot"
VERSION = 1


def _num(x: float) -> float | str:
    return "+Inf" if math.isinf(x) else x


def value_to_json(value: Value | None) -> Any:
    if isinstance(value, Histogram):
        return {"bounds": [_num(b) for b in value.bounds], "counts": list(value.counts), "sum": value.total}
    return value


def value_from_json(data: Any) -> Value | None:
    if isinstance(data, dict):
        bounds = tuple(math.inf if b == "+Inf" else float(b) for b in data["bounds"])
        return Histogram(bounds, tuple(int(c) for c in data["counts"]), data.get("sum"))
    return None if data is None else float(data)


def spec_to_json(spec: MetricSpec) -> dict[str, Any]:
    return {
        "type": spec.kind.value,
        "help": spec.help,
        "path": list(spec.path),
        "labels": list(spec.labels),
        "unit": spec.unit,
    }


def spec_from_json(name: str, d: dict[str, Any]) -> MetricSpec:
    return MetricSpec(name, Kind(d["type"]), d["help"], tuple(d["path"]), tuple(d["labels"]), d.get("unit", ""))


def health_to_json(health: Mapping[str, SourceHealth]) -> dict[str, Any]:
    return {k: {"up": h.up, "reason": h.reason, "last_ok": h.last_ok, "off": h.off} for k, h in health.items()}


def health_from_json(data: dict[str, Any]) -> dict[str, SourceHealth]:
    return {
        k: SourceHealth(k, v["up"], v.get("reason", ""), v.get("last_ok"), bool(v.get("off", False)))
        for k, v in data.items()
    }


def to_dict(snapshot: Snapshot, events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A JSON-ready document of the snapshot (and, when given, recent events in the Retis envelope)."""
    specs: dict[str, dict[str, Any]] = {}
    series = []
    for s in snapshot.series:
        spec = s.spec
        if spec.name not in specs:
            specs[spec.name] = spec_to_json(spec)
        item: dict[str, Any] = {"name": spec.name, "labels": dict(s.labels), "value": value_to_json(s.value)}
        if s.rate is not None:
            item["rate"] = s.rate
        if s.interval_histogram is not None:
            item["interval"] = value_to_json(s.interval_histogram)
        if s.history:
            item["history"] = list(s.history)
        if s.stale:
            item["stale"] = True
        series.append(item)
    meta = dict(snapshot.meta)
    meta["time"] = datetime.fromtimestamp(snapshot.timestamp, UTC).isoformat()
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "meta": meta,
        "timestamp": snapshot.timestamp,
        "seq": snapshot.seq,
        "interval": snapshot.interval,
        "collect_seconds": snapshot.collect_seconds,
        "health": health_to_json(snapshot.health),
        "specs": specs,
        "series": series,
        "tables": {name: [flows.plain(r) for r in rows] for name, rows in snapshot.tables.items()},
    }
    if events is not None:
        doc["events"] = events
    return doc


def from_dict(doc: dict[str, Any]) -> Snapshot:
    """Rebuild a snapshot from :func:`to_dict`'s document; a foreign or damaged document is an OvstopError."""
    if doc.get("format") != FORMAT:
        raise OvstopError('not an ovstop snapshot (no "format": "ovstop-snapshot")')
    if doc.get("version") != VERSION:
        raise OvstopError(f"ovstop snapshot version {doc.get('version')} is not supported (expected {VERSION})")
    try:
        specs = {name: spec_from_json(name, d) for name, d in doc["specs"].items()}
        series = tuple(
            Series(
                specs[item["name"]],
                tuple(sorted(item["labels"].items())),
                value_from_json(item["value"]),
                item.get("rate"),
                value_from_json(item["interval"]) if "interval" in item else None,  # type: ignore[arg-type]
                tuple(item.get("history", ())),
                bool(item.get("stale", False)),
            )
            for item in doc["series"]
        )
        health = health_from_json(doc["health"])
        return Snapshot(
            doc["seq"],
            doc["timestamp"],
            doc.get("interval"),
            series,
            health,
            _tables_from_json(doc.get("tables", {})),
            doc.get("meta", {}),
            doc.get("collect_seconds", 0.0),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise OvstopError(f"damaged ovstop snapshot: {exc!r}") from None


def _tables_from_json(tables: Mapping[str, list[dict[str, Any]]]) -> dict[str, Sequence[Mapping[str, Any]]]:
    out: dict[str, Sequence[Mapping[str, Any]]] = dict(tables)
    if flows.FLOWS in tables:
        out[flows.FLOWS] = [flows.row_of(r) for r in tables[flows.FLOWS]]
    if flows.CHANGES in tables:
        out[flows.CHANGES] = [flows.change_of(r) for r in tables[flows.CHANGES]]
    return out


def write(doc: dict[str, Any], path: str | Path | None) -> None:
    """Write ``doc`` to ``path`` (see :mod:`ovstop.fileio`: atomic for a regular file, through a device or
    FIFO), or to stdout when path is None or '-'."""
    text = json.dumps(doc, indent=1, sort_keys=False) + "\n"
    if path in (None, "-"):
        import sys

        sys.stdout.write(text)
        sys.stdout.flush()
        return
    fileio.write_atomic(path, text, "snapshot")
