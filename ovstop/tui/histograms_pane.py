"""Pane 2: every HISTOGRAM series as bars with bucket bounds, count, mean and p50/p90/p99.

Shows what each histogram gained over the last interval by default, or everything since the switch
started (``cumulative``), toggled with a key.
"""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from ovstop.collect.demand import Demand
from ovstop.model.metric import Histogram, Kind, Labels
from ovstop.model.store import Series, Snapshot
from ovstop.tui.format import bar, bound, num
from ovstop.tui.metrics_pane import labels_text
from ovstop.tui.view import Pane, ViewState

BAR_WIDTH = 30


def histogram_lines(h: Histogram, width: int = BAR_WIDTH) -> list[str]:
    """One line per bucket from the first to the last non-empty one: ``≤bound │bar│ count``."""
    used = [i for i, c in enumerate(h.counts) if c]
    if not used:
        return ["(no observations)"]
    peak = max(h.counts)
    lines = []
    for i in range(used[0], used[-1] + 1):
        c = h.counts[i]
        lines.append(f"≤{bound(h.bounds[i]):>7} │{bar(c / peak, width)}│ {num(c):>6} {100 * c / h.count:5.1f}%")
    return lines


def histogram_content(s: Series, cumulative: bool) -> Content:
    h = s.value if cumulative else s.interval_histogram
    labels = labels_text(s.labels)
    title = Content.assemble((s.spec.name.removeprefix("ovs_vswitchd_"), "bold"), f" {{{labels}}}" if labels else "")
    if not isinstance(h, Histogram):
        note = "no interval yet (needs two samples)" if not cumulative else "no value"
        return Content.assemble(title, f"\n  {note}")
    stats = (
        f"\n  {'cumulative' if cumulative else 'last interval'}: count {num(h.count)}  mean {num(h.mean())}"
        f"  p50 {num(h.quantile(0.5))}  p90 {num(h.quantile(0.9))}  p99 {num(h.quantile(0.99))}\n"
    )
    return Content.assemble(title, stats, "\n".join("  " + line for line in histogram_lines(h)))


class HistogramsPane(Pane):
    """One Static per histogram series, keyed; a Static is updated only when its text changed."""

    title = "2 histograms"
    needs = Demand.of("pmd", "ebpf")

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static("", id="hist-summary", classes="detail")
        yield VerticalScroll(id="hist-list", classes="main")

    def on_mount(self) -> None:
        super().on_mount()
        self._items: dict[tuple[str, Labels], tuple[Static, str]] = {}

    def show(self, snap: Snapshot, view: ViewState) -> None:
        series = [
            s for s in snap.series if s.spec.kind is Kind.HISTOGRAM and view.matches(s.spec.name, labels_text(s.labels))
        ]
        mode = "cumulative" if view.cumulative else "per interval"
        summary = self.query_one("#hist-summary", Static)
        if not series:
            why = (
                "none match the filter"
                if view.filter
                else (
                    "this switch reports none (pmd-perf-show needs the userspace datapath; eBPF latency needs capture)"
                )
            )
            summary.update(f"no histograms: {why}")
        else:
            summary.update(f"{len(series)} histograms, {mode} (i toggles)")
        scroll = self.query_one("#hist-list", VerticalScroll)
        keys = {(s.spec.name, s.labels) for s in series}
        for key in [k for k in self._items if k not in keys]:
            self._items.pop(key)[0].remove()
        for s in series:
            key = (s.spec.name, s.labels)
            content = histogram_content(s, view.cumulative)
            known = self._items.get(key)
            if known is None:
                widget = Static(content, classes="histogram")
                scroll.mount(widget)
                self._items[key] = (widget, content.plain)
            elif known[1] != content.plain:
                known[0].update(content)
                self._items[key] = (known[0], content.plain)
