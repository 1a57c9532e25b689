"""Key ``h``: every health check with its verdict, what it saw, its threshold, why it matters and the metric
it reads, failing checks first; it follows the snapshots shown (paused view, replay) until closed."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from ovstop import health
from ovstop.model.store import Snapshot

MARKS = {health.FAIL: ("✗", "$error"), health.OK: ("●", "$success"), health.UNKNOWN: ("?", "$warning")}
ORDER = {health.FAIL: 0, health.UNKNOWN: 1, health.OK: 2}


def health_content(table: list[dict[str, Any]]) -> Content:
    failing = health.failing(table)
    parts: list[str | tuple[str, str]] = [
        ("health checks", "bold"),
        f"  {len(failing)} failing, {sum(r['state'] == health.OK for r in table)} ok, "
        f"{sum(r['state'] == health.UNKNOWN for r in table)} unknown  (escape or h closes)\n\n",
    ]
    for r in sorted(table, key=lambda r: (ORDER.get(r["state"], 1), r["check"])):
        mark, style = MARKS.get(r["state"], ("?", "$warning"))
        parts += [
            (f"{mark} {r['check']:<22}", f"bold {style}"),
            f" {r['seen']}",
            (f"  [{r['threshold']}]\n", "dim"),
            f"    {r['explain']}",
            (f" · {r['metric']}\n", "dim"),
        ]
    return Content.assemble(*parts)


class HealthScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,h,q", "dismiss", "Close health checks", id="health.close"),
    ]

    def __init__(self, snap: Snapshot) -> None:
        super().__init__()
        self.snap = snap

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="health-box"):
            yield Static(health_content(health.rows(self.snap)), id="health-text")

    def show(self, snap: Snapshot) -> None:
        self.snap = snap
        self.query_one("#health-text", Static).update(health_content(health.rows(snap)))

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
