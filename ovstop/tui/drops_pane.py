"""Pane 6: why packets die — every drop counter that has counted, ranked by rate, each naming its source."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable, Static

from ovstop import drops
from ovstop.collect.demand import METRICS
from ovstop.model.store import Snapshot
from ovstop.tui.format import DASH, num
from ovstop.tui.tables import sync_rows
from ovstop.tui.view import Pane, ViewState

COLUMNS = ("rank", "drops/s", "total", "what", "where", "source")


def summary(found: list[drops.Drop], shown: list[drops.Drop]) -> str:
    now = sum(1 for d in shown if (d.rate or 0.0) > 0)
    return f"{len(found)} drop counters, {len(shown)} counted, {now} dropping now (by drops/s, then total)"


def kernel_note(snap: Snapshot) -> str:
    if snap.find(drops.KERNEL_DROPS):
        return ""
    status = snap.tables.get("kernel_drops")
    if status and status[0]["counted"]:
        return "kernel drop reasons (skb:kfree_skb): counted, none so far"
    ebpf = snap.health.get("ebpf")
    fallback = ebpf.reason if ebpf is not None and ebpf.reason else "capture not running"
    why = status[0]["reason"] if status else fallback
    return f"kernel drop reasons (skb:kfree_skb): not captured ({why})"


class DropsPane(Pane):
    title = "6 drops"
    needs = METRICS  # drop counters come from most collectors

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static("", id="drops-summary", classes="detail")
        yield DataTable(id="drops-table", cursor_type="row", classes="main")
        yield Static("", id="drops-kernel", classes="detail")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#drops-table", DataTable).add_columns(*COLUMNS)

    def show(self, snap: Snapshot, view: ViewState) -> None:
        found = drops.collect(snap)
        shown = [d for d in drops.dropping(found) if view.matches(d.what, d.where, d.origin)]
        rows = {
            f"{d.metric}|{d.what}|{d.where}": tuple(
                Text(c)
                for c in (
                    str(rank),
                    num(d.rate) if d.rate is not None else DASH,
                    num(d.total),
                    d.what,
                    d.where,
                    d.origin,
                )
            )
            for rank, d in enumerate(shown, 1)
        }
        with self.app.batch_update():
            self.query_one("#drops-summary", Static).update(Text(summary(found, shown)))
            sync_rows(self.query_one("#drops-table", DataTable), rows, grow=True)
            self.query_one("#drops-kernel", Static).update(Text(kernel_note(snap)))
