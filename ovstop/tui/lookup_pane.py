"""Pane 4: flow lookup hit/miss per datapath and per PMD, the datapath flows ranked, top missed keys."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable, Static

from ovstop.collect import datapath, pmd
from ovstop.collect.demand import FLOW_DUMP, Demand
from ovstop.model.flows import FlowRow, flow_rows
from ovstop.model.store import Snapshot
from ovstop.tui.format import DASH, duration, key_summary, num, pct, short_ufid
from ovstop.tui.tables import sync_rows
from ovstop.tui.view import Pane, ViewState

MAX_FLOW_ROWS = 200
CACHES = (
    ("emc", pmd.COUNTERS["emc_hits"].name),
    ("smc", pmd.COUNTERS["smc_hits"].name),
    ("megaflow", pmd.COUNTERS["megaflow_hits"].name),
    ("simple", pmd.COUNTERS["simple_match_hits"].name),
    ("phwol", pmd.COUNTERS["phwol_hits"].name),
)
PMD_MISSED, PMD_LOST = pmd.COUNTERS["upcalls"].name, pmd.COUNTERS["lost_upcalls"].name
LOOKUP_COLUMNS = ("scope", *(c for c, _ in CACHES), "hit/s", "miss/s", "lost/s", "hit%")
FLOW_COLUMNS = ("rank", "pkt/s", "byte/s", "packets", "age", "pmd", "ufid", "key", "actions")
FLOW_WIDTHS = (4, 6, 6, 7, 6, 7, 8, 60, 30)


def _rate(snap: Snapshot, name: str, **labels: str) -> float | None:
    return snap.rate_total(name, **labels)


def lookup_rows(snap: Snapshot) -> dict[str, tuple[str, ...]]:
    """Rows keyed by scope: one per datapath (dpctl/show counters), one per PMD thread (pmd-perf-show)."""
    rows: dict[str, tuple[str, ...]] = {}
    for s in snap.find(datapath.HIT.name):
        dp = s.label("datapath")
        hit, miss = s.rate, _rate(snap, datapath.MISSED.name, datapath=dp)
        lost = _rate(snap, datapath.LOST.name, datapath=dp)
        seen = (hit or 0.0) + (miss or 0.0)
        rows[dp] = (dp, *(DASH for _ in CACHES), num(hit), num(miss), num(lost), pct(hit, seen))
    for s in snap.find(pmd.HIT.name):
        labels = dict(s.labels)
        hit = s.rate
        miss = _rate(snap, PMD_MISSED, **labels)
        caches = []
        for _, name in CACHES:
            r = _rate(snap, name, **labels)
            caches.append(f"{num(r)} ({pct(r, hit)})" if r else num(r))
        seen = (hit or 0.0) + (miss or 0.0)
        scope = f"{labels.get('thread', '?')}@{labels.get('datapath', '').partition('@')[2]}"
        rows[scope] = (scope, *caches, num(hit), num(miss), num(_rate(snap, PMD_LOST, **labels)), pct(hit, seen))
    return rows


def _age(row: FlowRow, now: float) -> float | None:
    return None if row.first_seen is None else now - row.first_seen


def sort_value(row: FlowRow, sort: str, now: float) -> float:
    if sort == "packets":
        return row.packets_rate or 0.0
    if sort == "bytes":
        return row.bytes_rate or 0.0
    if sort == "age":
        return _age(row, now) or 0.0
    return float(row.packets)


def flow_cells(row: FlowRow, now: float) -> tuple[Text, ...]:
    cells = (
        num(row.packets_rate),
        num(row.bytes_rate),
        num(row.packets),
        duration(_age(row, now)),
        row.pmd or DASH,
        short_ufid(row.ufid),
        key_summary(row.key or ""),
        row.actions or "",
    )
    return tuple(Text(c) for c in cells)


def flow_key(fid: tuple[str, str, str]) -> str:
    """The flow table's row key for a flow (the app finds the flow behind a selected row with it)."""
    return "\x1f".join(fid)


class LookupPane(Pane):
    """Two keyed DataTables (cells updated only when changed) and a missed-keys line."""

    title = "4 flow lookup"
    needs = Demand.of("datapath", "pmd", FLOW_DUMP, "ebpf")

    def compose(self):  # type: ignore[no-untyped-def]
        yield DataTable(id="lookup-table", cursor_type="none", classes="lookup")
        yield Static("", id="flows-status", classes="detail")
        yield DataTable(id="flows-table", cursor_type="row", classes="main")
        yield Static("", id="missed-keys", classes="detail")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#lookup-table", DataTable).add_columns(*LOOKUP_COLUMNS)
        flows = self.query_one("#flows-table", DataTable)
        for name, width in zip(FLOW_COLUMNS, FLOW_WIDTHS, strict=True):
            flows.add_column(name, key=name, width=width)
        self.order: list[str] = []
        """Flow row keys in the order shown (tests read it)."""

    def show(self, snap: Snapshot, view: ViewState) -> None:
        with self.app.batch_update():
            rows = lookup_rows(snap)
            cells = {k: tuple(Text(c) for c in v) for k, v in rows.items()}
            sync_rows(self.query_one("#lookup-table", DataTable), cells, grow=True)
            self._show_flows(snap, view)
            self._show_missed(view)

    def _show_flows(self, snap: Snapshot, view: ViewState) -> None:
        now = snap.timestamp
        rows = [r for r in flow_rows(snap.tables) if view.matches(str(r.key), str(r.actions), str(r.ufid))]
        rows.sort(key=lambda r: sort_value(r, view.sort, now), reverse=not view.reverse)
        shown = rows[:MAX_FLOW_ROWS]
        table = self.query_one("#flows-table", DataTable)
        wanted = {flow_key(r.id): (Text(str(rank)), *flow_cells(r, now)) for rank, r in enumerate(shown, 1)}
        sync_rows(table, wanted)
        table.sort("rank", key=lambda cell: int(cell.plain))
        self.order = list(wanted)
        unit = "/s" if view.sort in ("packets", "bytes") else ""
        direction = "ascending" if view.reverse else "descending"
        self.query_one("#flows-status", Static).update(
            Text(
                f"datapath flows: {len(rows)} (top {len(shown)}), sorted by {view.sort}{unit} {direction}"
                " (s: sort column, < ascending, > descending)"
            )
        )

    def _show_missed(self, view: ViewState) -> None:
        store = view.feed.events
        missed = self.query_one("#missed-keys", Static)
        if store is None or "flow_lookup" not in store.totals():
            why = view.feed.events_reason or "no flow_lookup events captured yet"
            missed.update(Text(f"top missed keys: needs eBPF flow_lookup events ({why})"))
            return
        top = store.missed_keys_top(5)
        missed.update(Text("top missed keys: " + ("  ".join(f"{n}× {k}" for k, n in top) or "none")))
