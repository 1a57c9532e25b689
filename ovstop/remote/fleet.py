"""``ovstop fleet``: one row per hypervisor, from a fixed set of PromQL queries over ovstop's own metrics.

Every refresh runs the same :func:`queries` (one instant query per column, each aggregated ``by
(instance)``, and one listing the failing health checks by name), so the cost on the Prometheus server grows
with the series it reads, never with a query per host. Metric names are looked up in the catalogue of specs
the collectors declare (:func:`ovstop.export.mixin.m`), so a renamed metric fails here instead of showing an
empty column.

A host is listed when Prometheus has a target for it in the scrape job (``up{job=…}``): a stopped
exporter stays listed, as down, and its other columns are empty (no fresh samples), never stale numbers.
"""

from __future__ import annotations

import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ovstop import health
from ovstop.errors import OvstopError
from ovstop.export.mixin import JOB, m
from ovstop.export.mixin import _rate_either as rate_either
from ovstop.remote.http import HttpClient

HIT = m("ovs_vswitchd_datapath_hit_total")
MISSED = m("ovs_vswitchd_datapath_missed_total")
LOST = m("ovs_vswitchd_datapath_lost_total")
FLOWS = m("ovs_vswitchd_upcall_flows_current")
FLOW_LIMIT = m("ovs_vswitchd_upcall_flows_limit")
BUSY = m("ovs_vswitchd_poll_threads_busy_cycles_total")
IDLE = m("ovs_vswitchd_poll_threads_idle_cycles_total")
SB_CONNECTED = m("ovn_controller_sb_connected")
HEALTH = m(health.HEALTH.name)


FAILING_CHECKS = "failing_checks"
"""The one query answered with label values (the ``check`` of each failing verdict), not a number per host."""


def queries(job: str = JOB, window: str = "1m") -> dict[str, str]:
    """Column -> PromQL, each answering one value per instance of ``job``; rates over ``window``."""
    sel = f'{{job="{job}"}}'

    def rate(name: str) -> str:
        return f"sum by (instance) (rate({name}{sel}[{window}]))"

    busy, idle = f"rate({BUSY}{sel}[{window}])", f"rate({IDLE}{sel}[{window}])"
    return {
        "up": f"up{sel}",
        "hit_ratio": f"{rate(HIT)} / ({rate(HIT)} + {rate(MISSED)})",
        "upcalls": rate(MISSED),
        "lost": rate(LOST),
        "flows": f"sum by (instance) ({FLOWS}{sel})",
        "flow_limit": f"sum by (instance) ({FLOW_LIMIT}{sel})",
        # the busiest PMD thread of the host; a host without PMD threads has no value
        "pmd_busy": f"max by (instance) ({busy} / ({busy} + {idle}))",
        # rx + tx interface drops, each side present or not (a NIC may report one side only)
        "drops": rate_either("dropped", by="instance", window=window, selector=sel),
        "ovn_sb": f"min by (instance) ({SB_CONNECTED}{sel})",
        # checks failing (1 healthy, 0 failing); no value for a host exporting no verdict at all
        "failing": f"sum by (instance) (1 - {HEALTH}{sel})",
        # their names: one series per failing check, so the answer grows with failures, not with hosts
        FAILING_CHECKS: f"{HEALTH}{sel} == 0",
    }


@dataclass
class HostRow:
    """One hypervisor; None where Prometheus has no value (no such series, or the exporter is down)."""

    instance: str
    values: dict[str, float | None] = field(default_factory=dict)
    failing_checks: tuple[str, ...] = ()
    """Names of the health checks failing on the host (sorted)."""

    @property
    def up(self) -> bool:
        return self.values.get("up") == 1.0

    def get(self, column: str) -> float | None:
        return self.values.get(column)

    @property
    def address(self) -> str | None:
        """``host:port`` when the instance label is one (what ``--connect`` needs), else None."""
        host, sep, port = self.instance.rpartition(":")
        return self.instance if sep and host and port.isdigit() else None


def _series(answer: Any, expr: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of each series in a Prometheus instant-query answer; an OvstopError when refused or
    damaged."""
    try:
        if answer["status"] != "success":
            raise OvstopError(f"Prometheus refused {expr!r}: {answer.get('error', answer['status'])}")
        return [
            ({str(k): str(v) for k, v in item["metric"].items()}, float(item["value"][1]))
            for item in answer["data"]["result"]
        ]
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        raise OvstopError(f"a damaged Prometheus answer to {expr!r}") from None


def _vector(answer: Any, expr: str) -> dict[str, float]:
    """instance -> value; NaN (0/0 ratios) is left out."""
    return {labels.get("instance", ""): value for labels, value in _series(answer, expr) if math.isfinite(value)}


def _checks(answer: Any, expr: str) -> dict[str, tuple[str, ...]]:
    """instance -> sorted ``check`` labels of the series answered."""
    out: dict[str, list[str]] = {}
    for labels, _ in _series(answer, expr):
        out.setdefault(labels.get("instance", ""), []).append(labels.get("check", "?"))
    return {instance: tuple(sorted(names)) for instance, names in out.items()}


def check_window(text: str) -> str:
    """A PromQL duration such as ``1m`` or ``30s`` (what goes between the brackets of a range selector)."""
    if not re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", text) or not re.search(r"[1-9]", text):
        raise OvstopError(f"--window {text!r}: expected a Prometheus duration such as 30s, 1m or 5m")
    return text


class Fleet:
    """Runs :func:`queries` against a Prometheus server and folds the answers into :class:`HostRow` s."""

    def __init__(self, client: HttpClient, job: str = JOB, window: str = "1m") -> None:
        self.client = client
        self.queries = queries(job, window)
        self.refreshes = 0

    def rows(self, at: float | None = None) -> list[HostRow]:
        """One row per target of the job, sorted by instance; an OvstopError when Prometheus cannot answer.

        The queries run concurrently (Prometheus evaluates them in parallel) at one evaluation time, so the
        columns of a row describe the same instant: ``at`` (Unix seconds), now by default."""
        when = {"time": f"{time.time() if at is None else at:.3f}"}

        def ask(expr: str) -> Any:
            return self.client.get_json("/api/v1/query", {"query": expr, **when})

        with ThreadPoolExecutor(max_workers=len(self.queries), thread_name_prefix="ovstop-fleet") as pool:
            raw = dict(zip(self.queries, pool.map(ask, self.queries.values()), strict=True))
        self.refreshes += 1
        numbers = {col: _vector(a, self.queries[col]) for col, a in raw.items() if col != FAILING_CHECKS}
        names = _checks(raw[FAILING_CHECKS], self.queries[FAILING_CHECKS])
        instances = sorted(set().union(*(a.keys() for a in numbers.values())) - {""})
        return [HostRow(i, {col: numbers[col].get(i) for col in numbers}, names.get(i, ())) for i in instances]


SORTS = ("instance", "up", "failing", "hit_ratio", "upcalls", "lost", "flows", "pmd_busy", "drops", "ovn_sb")
"""What the fleet table sorts by, in the order the sort key cycles through them."""


def arrange(rows: list[HostRow], sort: str = "instance", descending: bool = False, needle: str = "") -> list[HostRow]:
    """Rows whose instance contains ``needle`` (case-insensitive), sorted by ``sort``; hosts without a value
    for the column go last either way (an unknown number is not the smallest)."""
    kept = [r for r in rows if needle.lower() in r.instance.lower()]
    if sort == "instance":
        return sorted(kept, key=lambda r: r.instance, reverse=descending)
    known = [r for r in kept if r.get(sort) is not None]
    unknown = [r for r in kept if r.get(sort) is None]
    return sorted(known, key=lambda r: (r.get(sort), r.instance), reverse=descending) + unknown
