"""Pane 1: the whole metrics tree (spec paths), each leaf with value, rate/s and a sparkline of its history."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from ovstop.collect import bridge
from ovstop.collect.demand import INTERFACES, METRICS, SUMMARY, Demand
from ovstop.model.metric import Histogram, Kind, Labels
from ovstop.model.store import Series, Snapshot
from ovstop.tui.format import DASH, num, sparkline
from ovstop.tui.view import Pane, ViewState

SeriesKey = tuple[str, Labels]
NAME_WIDTH = 30
FOLDED = INTERFACES
"""The top-level branch (named after its collector) that can be folded; the collector runs only while the
branch is open or a filter is set: at 1,000 ports it is 10,000 of the 11,300 series, most of a round's cost."""
FOLDED_NOTE = "  folded: not collected until opened"
OPEN_UP_TO = 64
"""Until the user opens or closes the branch, it is open on a switch of at most this many ports (the
bridges' port counts, which the header's collectors read anyway) and folded on a bigger one."""


def labels_text(labels: Labels) -> str:
    return ",".join(f"{k}={v}" for k, v in labels)


def value_text(s: Series) -> str:
    """The value column: a number, a histogram's count, or the info marker."""
    if isinstance(s.value, Histogram):
        return f"n={num(s.value.count)}"
    if s.spec.kind is Kind.INFO:
        return "info"
    return num(s.value)


def branch_label(name: str, series: list[Series]) -> Text:
    """A metric's branch, so a collapsed tree still reads as numbers: a counter's sum over its series and
    their summed rate; a gauge's value, or its largest (gauges such as ratios do not add up)."""
    text = Text(name.ljust(NAME_WIDTH - 2)[: max(NAME_WIDTH - 2, len(name))])
    values = [float(s.value) for s in series if isinstance(s.value, int | float)]
    kind = series[0].spec.kind
    if kind not in (Kind.COUNTER, Kind.GAUGE) or not values:
        return text.append(f" {len(series)} series", style="dim")
    if kind is Kind.COUNTER:
        text.append(f" Σ{num(sum(values)):>9}")
        rates = [s.rate for s in series if s.rate is not None]
        if rates:
            text.append(f" {num(sum(rates)) + '/s':>9}")
    else:
        text.append(f"  {num(values[0]):>9}" if len(values) == 1 else f" max {num(max(values)):>7}")
    return text.append(f"  ({len(series)})", style="dim")


def leaf_label(name: str, s: Series) -> Text:
    text = Text(name.ljust(NAME_WIDTH)[: max(NAME_WIDTH, len(name))])
    text.append(f" {value_text(s):>9}")
    rate = f"{num(s.rate)}/s" if s.rate is not None else (DASH if s.spec.kind is Kind.COUNTER else "")
    text.append(f" {rate:>9} ")
    text.append(sparkline(s.history, 12), style="bold")
    if s.stale:
        text.append(" stale", style="dim italic")
    return text


def _visible(node: TreeNode[SeriesKey | None]) -> bool:
    """Whether every branch above ``node`` is open (the root is hidden and never counts as closed)."""
    parent = node.parent
    while parent is not None and not parent.is_root:
        if not parent.is_expanded:
            return False
        parent = parent.parent
    return True


class _Openness:
    """:func:`_visible` for the nodes of one refresh, walking up from each parent once: the thousands of
    leaves of one metric share a parent, and a refresh asks about every leaf."""

    def __init__(self) -> None:
        self._by_parent: dict[int, bool] = {}

    def visible(self, node: TreeNode[SeriesKey | None]) -> bool:
        parent = node.parent
        if parent is None:
            return True
        found = self._by_parent.get(parent.id)
        if found is None:
            found = self._by_parent[parent.id] = _visible(node)
        return found


class MetricsPane(Pane):
    """A Tree whose leaves are series; only leaves whose text changed are relabelled."""

    title = "1 metrics"
    needs = METRICS  # the whole tree; no flow dump (its rows are pane 4's)

    def wants(self) -> Demand:
        folded = self._branches.get((FOLDED,))
        open_ = self._filter or (folded is not None and folded.is_expanded)
        return self.needs if open_ else SUMMARY

    def on_mount(self) -> None:
        super().on_mount()
        self.watch(self.metrics_tree, "scroll_y", self._label_pending, init=False)

    def compose(self):  # type: ignore[no-untyped-def]
        tree: Tree[SeriesKey | None] = Tree("metrics", id="metrics-tree", classes="main")
        tree.show_root = False
        tree.guide_depth = 2
        yield tree
        yield Static("", id="metrics-detail", classes="detail")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._branches: dict[tuple[str, ...], TreeNode[SeriesKey | None]] = {}
        self._leaves: dict[SeriesKey, tuple[TreeNode[SeriesKey | None], str]] = {}
        self._series: dict[SeriesKey, Series] = {}
        self._pending: dict[SeriesKey, Series] = {}
        """Series of leaves under collapsed branches or off screen whose label is out of date: labelled when
        they come into view (most leaves are hidden, and a label with its sparkline is the costly part of a
        refresh)."""
        self._filter = ""
        self._told: Demand | None = None
        """What the app was last told this pane needs."""
        self._auto_open: bool | None = False
        """Whether this pane last opened (True) or folded the interface branch for the switch's size; None
        once the user opened or closed it: their choice stands."""

    @property
    def metrics_tree(self) -> Tree[SeriesKey | None]:
        return self.query_one("#metrics-tree", Tree)

    def _branch(self, path: tuple[str, ...]) -> TreeNode[SeriesKey | None]:
        node = self._branches.get(path)
        if node is None:
            parent = self.metrics_tree.root if len(path) == 1 else self._branch(path[:-1])
            top = len(path) == 1 and path[0] != FOLDED
            node = parent.add(path[-1], data=None, expand=top or bool(self._filter))
            self._branches[path] = node
        return node

    def _place(self, s: Series) -> TreeNode[SeriesKey | None]:
        """The leaf of ``s``: its metric's path node when unlabelled, else a child named by its labels."""
        if not s.labels:
            parent = self._branch(s.spec.path[:-1]) if len(s.spec.path) > 1 else self.metrics_tree.root
            return parent.add_leaf(s.spec.path[-1], data=(s.spec.name, s.labels))
        return self._branch(s.spec.path).add_leaf("", data=(s.spec.name, s.labels))

    def show(self, snap: Snapshot, view: ViewState) -> None:
        if view.filter != self._filter:
            self._filter = view.filter
            self.metrics_tree.clear()
            self._branches.clear()
            self._leaves.clear()
            self._pending.clear()
        if view.filter:
            wanted = {
                (s.spec.name, s.labels): s
                for s in snap.series
                if view.matches(s.spec.name, labels_text(s.labels), "/".join(s.spec.path))
            }
        else:
            wanted = {(s.spec.name, s.labels): s for s in snap.series}
        self._series = wanted
        for key in self._leaves.keys() - wanted.keys():
            self._leaves.pop(key)[0].remove()
            self._pending.pop(key, None)
        by_metric: dict[tuple[str, ...], list[Series]] = {}
        for s in wanted.values():
            if s.labels:
                by_metric.setdefault(s.spec.path, []).append(s)
        openness = _Openness()
        for key, s in wanted.items():
            known = self._leaves.get(key)
            if known is None:
                self._leaves[key] = (self._place(s), "")
                self._label(key, s)
            elif openness.visible(known[0]) and self._on_screen(known[0]):
                self._label(key, s)
                self._pending.pop(key, None)  # else a later scroll would put back an older label
            else:
                self._pending[key] = s
        for path, series in by_metric.items():
            node = self._branches.get(path)
            if node is not None and (len(path) == 1 or openness.visible(node)):
                label = branch_label(path[-1], series)
                if str(node.label) != label.plain:
                    node.set_label(label)
        folded = self._branch((FOLDED,))  # there even before anything under it was collected
        ports = snap.total(bridge.N_PORTS)
        if self._auto_open is not None and ports is not None and (ports <= OPEN_UP_TO) != folded.is_expanded:
            self._auto_open = ports <= OPEN_UP_TO
            if self._auto_open:
                folded.expand()
            else:
                folded.collapse()
        note = "" if folded.is_expanded or any(p[0] == FOLDED for p in by_metric) else FOLDED_NOTE
        if str(folded.label) != FOLDED + note:
            folded.set_label(Text(FOLDED).append(note, style="dim"))
        self._show_detail()
        self._tell_needs()

    def _tell_needs(self) -> None:
        """Ask for a new demand when what this pane needs changed (the folded branch opened or closed)."""
        wants = self.wants()
        if wants != self._told:
            self._told = wants
            self.post_message(self.NeedsChanged())

    def _label(self, key: SeriesKey, s: Series) -> None:
        """Set a leaf's label when its text changed."""
        node, shown = self._leaves[key]
        label = leaf_label(s.spec.path[-1] if not s.labels else labels_text(s.labels), s)
        if label.plain != shown:
            node.set_label(label)
            self._leaves[key] = (node, label.plain)

    def _on_screen(self, node: TreeNode[SeriesKey | None]) -> bool:
        """Whether ``node``'s line (as of the tree's last layout) is within a screen of the shown lines, or
        not laid out yet: a filter can open 10,000 leaves, and labelling them all (a sparkline each) took
        190 ms a refresh."""
        tree = self.metrics_tree
        height = max(tree.size.height, 1)
        top = tree.scroll_offset.y
        return node.line < 0 or top - height <= node.line < top + 2 * height

    def _label_pending(self) -> None:
        """Label the pending leaves that are now open and on screen (after a scroll or a branch opened)."""
        for key in [k for k in self._pending if _visible(self._leaves[k][0]) and self._on_screen(self._leaves[k][0])]:
            self._label(key, self._pending.pop(key))

    def on_resize(self) -> None:
        self.call_after_refresh(self._label_pending)  # a taller pane (zoomed in) shows more lines

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[SeriesKey | None]) -> None:
        self.call_after_refresh(self._label_pending)  # once the tree has laid out the lines it opened
        self._toggled(event.node, True)

    def on_tree_node_collapsed(self, event: Tree.NodeCollapsed[SeriesKey | None]) -> None:
        self._toggled(event.node, False)

    def _toggled(self, node: TreeNode[SeriesKey | None], opened: bool) -> None:
        if node is self._branches.get((FOLDED,)) and opened != self._auto_open and not self._filter:
            self._auto_open = None  # the user's doing, not this pane's
        self._tell_needs()

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[SeriesKey | None]) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        node = self.metrics_tree.cursor_node
        key = node.data if node is not None else None
        s = self._series.get(key) if key is not None else None
        detail = self.query_one("#metrics-detail", Static)
        if s is None:
            detail.update(f"{len(self._series)} series" + (f" matching {self._filter!r}" if self._filter else ""))
            return
        labels = labels_text(s.labels)
        text = f"{s.spec.name}{{{labels}}} {s.spec.kind.value}  value {value_text(s)}"
        if s.rate is not None:
            text += f"  rate {num(s.rate)}/s"
        text += f"  — {s.spec.help}"
        detail.update(Text(text))
