"""Enter on a datapath flow: the flow whole (key with masks, actions, counters, PMD, kernel lookup hits, a
sparkline of its rate while the screen is open) and, asked once when it opens, the OpenFlow path that produced
it (ofproto/detrace by ufid where the switch has it, else ofproto/trace) with each cookie's OVN logical flow.
Escape returns to the pane, as it was."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Sparkline, Static

from ovstop.ebpf.collector import flow_lookup_hits
from ovstop.errors import OvstopError
from ovstop.explain import DETRACE, Explanation, detrace_args, trace_args
from ovstop.model.flows import flow_id, flow_rows
from ovstop.model.store import Snapshot
from ovstop.tui.feed import SnapshotFeed
from ovstop.tui.format import DASH, num
from ovstop.tui.tables import sync_rows

STEP_COLUMNS = ("bridge", "table", "priority", "cookie", "match", "actions")
OVN_COLUMNS = ("cookie", "datapath / pipeline", "table", "stage", "match", "actions", "northbound")
HISTORY = 120


def lookups_text(hits: int | str) -> str:
    if isinstance(hits, str):
        return f"unavailable: {hits}"
    return f"{num(hits)} hits (kernel flow_lookup by eBPF, since capture started)"


def flow_content(row: Mapping[str, Any], hits: int | str) -> Content:
    def field(name: str, value: object) -> list[str | tuple[str, str]]:
        return [(f"{name:>9} ", "bold $accent"), f"{value}\n"]

    return Content.assemble(
        *field("datapath", row.get("datapath") or DASH),
        *field("pmd", row.get("pmd") or DASH),
        *field("ufid", row.get("ufid") or DASH),
        *field("packets", f"{num(row.get('packets'))}  ({num(row.get('packets_rate'))}/s)"),
        *field("bytes", f"{num(row.get('bytes'))}  ({num(row.get('bytes_rate'))}/s)"),
        *field("used", DASH if row.get("used_s") is None else f"{row['used_s']:g}s ago"),
        *field("lookups", lookups_text(hits)),
        *field("key/mask", row.get("key") or DASH),
        *field("actions", row.get("actions") or DASH),
    )


def asked(result: Explanation) -> str:
    """What the switch was asked: detrace by ufid, or the trace of the whole key (and why not detrace)."""
    if result.method == DETRACE:
        return f"{DETRACE} {' '.join(detrace_args(result.row))} (the rules that built this flow)"
    why = f" ({DETRACE} could not answer: {result.fallback})" if result.fallback else ""
    return f"ofproto/trace {trace_args(result.row, result.key)[0]} <whole key>{why}"


def step_rows(explanation: Explanation) -> dict[str, tuple[Text, ...]]:
    rows = {}
    for i, s in enumerate(explanation.trace.steps):
        prio = DASH if s.priority is None else str(s.priority)
        cells = (
            "  " * s.depth + (s.bridge or DASH),  # OVS 3.4 and 3.5's detrace does not name the bridge
            str(s.table),
            prio,
            s.cookie or DASH,
            s.match,
            "; ".join(s.actions + s.notes) or DASH,
        )
        rows[str(i)] = tuple(Text(c) for c in cells)
    return rows


def ovn_rows(explanation: Explanation) -> dict[str, tuple[Text, ...]]:
    return {
        lf.cookie: tuple(
            Text(c) for c in (lf.cookie, lf.pipeline, str(lf.table), lf.stage, lf.match, lf.actions, lf.nb or DASH)
        )
        for lf in explanation.logical
    }


class FlowScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back to the pane", id="flow.back"),
        Binding("e", "explain", "Flow detail: explain again (ofproto/detrace or trace)", id="flow.explain"),
    ]

    def __init__(self, row: Mapping[str, Any], feed: SnapshotFeed, snap: Snapshot) -> None:
        super().__init__()
        self.row = row
        self.hits = flow_lookup_hits(snap, row)
        self.feed = feed
        self.flow = flow_id(row)
        self.rates: list[float] = [float(row["packets_rate"])] if row.get("packets_rate") is not None else []
        self.explanation: Explanation | None = None
        self.error = ""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="flow-box"):
            yield Static(
                Content.assemble(("datapath flow", "bold"), "  (escape returns, e explains again)"), id="flow-title"
            )
            yield Static(flow_content(self.row, self.hits), id="flow-fields")
            yield Static("", id="spark-label", classes="detail")
            yield Sparkline(self.rates, id="flow-spark")
            yield Static("explain: asking the switch (ofproto/detrace or trace)…", id="explain-status")
            yield DataTable(id="trace-table", cursor_type="row")
            yield Static("", id="trace-final")
            yield Static("", id="ovn-status", classes="detail")
            yield DataTable(id="ovn-table", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#trace-table", DataTable).add_columns(*STEP_COLUMNS)
        self.query_one("#ovn-table", DataTable).add_columns(*OVN_COLUMNS)
        for table in ("#trace-table", "#ovn-table"):
            self.query_one(table, DataTable).display = False
        self._spark()
        self.action_explain()

    def _spark(self) -> None:
        """The rate sparkline once there are two rates to draw (one value would fill it)."""
        enough = len(self.rates) >= 2
        self.query_one("#spark-label", Static).update(
            f"packets/s while this screen is open ({len(self.rates)} samples)"
            if enough
            else "packets/s while this screen is open: from the next samples on"
        )
        spark = self.query_one("#flow-spark", Sparkline)
        spark.display = enough
        spark.data = self.rates

    def show(self, snap: Snapshot) -> None:
        """A new snapshot: the same flow's counters and rate (by datapath, pmd and ufid), if it still exists."""
        row = next((r for r in flow_rows(snap.tables) if r.id == self.flow), None)
        if row is None:
            gone = ("gone from the datapath (expired or deleted)", "$warning")
            self.query_one("#flow-fields", Static).update(Content.assemble(flow_content(self.row, self.hits), gone))
            return
        self.row, self.hits = row, flow_lookup_hits(snap, row)
        if row.get("packets_rate") is not None:
            self.rates = [*self.rates, float(row["packets_rate"])][-HISTORY:]
            self._spark()
        self.query_one("#flow-fields", Static).update(flow_content(row, self.hits))

    def action_explain(self) -> None:
        if self.feed.kind != "live":  # a replay or a remote ovstop has no switch to ask: its feed says why at once
            try:
                self._show(self.feed.explain(self.row))
            except OvstopError as exc:
                self._show(str(exc))
            return
        self.query_one("#explain-status", Static).update("explain: asking the switch (ofproto/detrace or trace)…")
        self._explain(self.row)

    @work(thread=True, exclusive=True, group="explain")
    def _explain(self, row: Mapping[str, Any]) -> None:
        try:
            result: Explanation | str = self.feed.explain(row)
        except OvstopError as exc:
            result = str(exc)
        self.app.call_from_thread(self._show, result)

    def _show(self, result: Explanation | str) -> None:
        status = self.query_one("#explain-status", Static)
        if isinstance(result, str):
            self.error = result
            status.update(Text(f"explain: {result}"))
            return
        self.explanation, self.error = result, ""
        trace = result.trace
        status.update(
            Content.assemble(
                f"explain: {asked(result)}: {len(trace.steps)} tables traversed\n",
                ("whole key ", "bold"),
                result.key,
            )
        )
        steps = self.query_one("#trace-table", DataTable)
        steps.display = True
        sync_rows(steps, step_rows(result), grow=True)
        self.query_one("#trace-final", Static).update(
            Content.assemble(
                ("megaflow ", "bold"),
                f"{trace.megaflow or DASH}\n",
                ("datapath actions ", "bold"),
                trace.datapath_actions,
            )
        )
        self.query_one("#ovn-status", Static).update(
            Text(f"OVN: {result.ovn}" if result.ovn else f"OVN: {len(result.logical)} logical flows (ovn-detrace)")
        )
        logical = self.query_one("#ovn-table", DataTable)
        logical.display = bool(result.logical)
        sync_rows(logical, ovn_rows(result), grow=True)

    def action_back(self) -> None:
        self.dismiss(None)
