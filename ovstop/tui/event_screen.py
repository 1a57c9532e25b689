"""Enter on an eBPF event of the upcall pane: the event's fields under their Retis names, the events correlated
with it (an upcall, its enqueue and return, the actions userspace re-executed under its queue_id), and, when
the event names a datapath flow (ufid) the shown flow dump holds, that flow, whose detail and explain ``f``
opens. Escape returns to the pane, as it was."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ovstop.ebpf.collector import flow_lookup_hits
from ovstop.events.schema import OVS_FIELDS, UPCALL_CMDS, OvsEvent
from ovstop.events.store import EventStore
from ovstop.model.flows import FlowRow, flow_rows
from ovstop.model.store import Snapshot
from ovstop.tui.feed import SnapshotFeed
from ovstop.tui.flow_screen import FlowScreen, flow_content

SERIES_COLUMNS = ("timestamp", "cpu", "event_type", "summary")
MAX_SERIES = 64
POINTERS = frozenset({"flow", "sf_acts"})
"""Kernel addresses (the flow and its actions a lookup found), shown in hex as Retis does."""


def event_fields(ev: OvsEvent) -> list[tuple[str, str]]:
    """(name, value) of every field the event carries: Retis's section field names, ovstop's additions last."""
    out = [("timestamp", str(ev.timestamp)), ("event_type", ev.event_type)]
    if ev.cpu is not None:
        out.append(("smp_id", str(ev.cpu)))
    if ev.comm is not None or ev.pid is not None:
        out.append(("task", f"{ev.comm or ''} (pid {ev.pid})"))
    if ev.probe is not None:
        out.append(("probe", f"{ev.probe_type or ''} {ev.probe}".strip()))
    for json_name, attr in OVS_FIELDS.get(ev.event_type, ()):
        value = getattr(ev, attr)
        if value is None or value == "":
            continue
        if attr in POINTERS:
            out.append((json_name, f"{value:#x}"))
        else:
            named = f" ({UPCALL_CMDS[value]})" if attr == "cmd" and value in UPCALL_CMDS else ""
            out.append((json_name, f"{value}{named}"))
    if ev.action is not None:
        act = ev.action
        out.append(("action", act.kind if str(act) == act.kind else f"{act.kind}: {act}"))
        out += [(n, str(v)) for n, v in (("port", act.port), ("id", act.id), ("zone_id", act.zone_id)) if v is not None]
        out += [(n, str(v)) for n, v in (("flags", act.flags), ("reason", act.reason)) if v is not None]
        if act.nat is not None:
            nat = act.nat
            out.append(("nat", f"dir {nat.dir} addr {nat.min_addr}-{nat.max_addr} port {nat.min_port}-{nat.max_port}"))
    if ev.ufid is not None:
        out.append(("ufid", ev.ufid))
    if ev.dpflow:
        out.append(("dpflow", ev.dpflow))
    if ev.ofpflows:
        out.append(("ofpflows", " ".join(ev.ofpflows)))
    if ev.key is not None:
        out.append(("packet", str(ev.key)))
    if ev.skb_track is not None:
        out.append(("skb-tracking", f"{ev.skb_track:#x}"))
    if ev.latency_ns is not None:
        out.append(("latency", f"{ev.latency_ns / 1000:.1f}µs (upcall to return)"))
    if ev.corr_id is not None:
        out.append(("series", str(ev.corr_id)))
    return out


def fields_content(ev: OvsEvent) -> Content:
    width = max(len(name) for name, _ in event_fields(ev))
    parts: list[str | tuple[str, str]] = []
    for name, value in event_fields(ev):
        parts += [(f"{name:>{width}} ", "bold $accent"), f"{value}\n"]
    return Content.assemble(*parts)


def series(ev: OvsEvent, store: EventStore | None) -> list[OvsEvent]:
    """The events the correlator put in ``ev``'s series (upcall key, queue_id, recirc id, skb), oldest first."""
    if store is None or ev.corr_id is None:
        return []
    return store.snapshot(filter=lambda other: other.corr_id == ev.corr_id, limit=MAX_SERIES)


def flow_of(ev: OvsEvent, snap: Snapshot | None) -> FlowRow | None:
    """The datapath flow of the shown dump that a flow-lookup hit names, by ufid."""
    if ev.ufid is None or ev.is_miss or snap is None:
        return None
    return next((r for r in flow_rows(snap.tables) if r.ufid == ev.ufid), None)


class EventScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back to the pane", id="event.back"),
        Binding("f", "flow", "Event detail: its datapath flow (detail, explain)", id="event.flow"),
    ]

    def __init__(self, event: OvsEvent, feed: SnapshotFeed, snap: Snapshot | None) -> None:
        super().__init__()
        self.event = event
        self.feed = feed
        self.snap = snap
        self.flow = flow_of(event, snap)
        self.related = series(event, feed.events)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="event-box"):
            yield Static(
                Content.assemble((f"{self.event.event_type} event", "bold"), "  (escape returns)"), id="event-title"
            )
            yield Static(fields_content(self.event), id="event-fields")
            yield Static(self._series_text(), id="event-series-status", classes="detail")
            yield DataTable(id="event-series", cursor_type="row")
            yield Static(self._flow_text(), id="event-flow")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#event-series", DataTable)
        table.add_columns(*SERIES_COLUMNS)
        for ev in self.related:
            table.add_row(*(Text(c) for c in (str(ev.timestamp), str(ev.cpu), ev.event_type, ev.summary())))
        table.display = bool(self.related)

    def _series_text(self) -> str:
        if self.event.corr_id is None:
            return "correlated events: none (the event went through no correlator)"
        return f"correlated events (series {self.event.corr_id}): {len(self.related)}"

    def _flow_text(self) -> Content:
        ev = self.event
        if ev.ufid is None or ev.is_miss:
            return Content("datapath flow: the event names none (no ufid)")
        if self.flow is None or self.snap is None:
            return Content(f"datapath flow {ev.ufid}: not in the shown flow dump (expired, or flows not dumped)")
        return Content.assemble(
            ("datapath flow", "bold"),
            "  (f: its detail and explain)\n",
            flow_content(self.flow, flow_lookup_hits(self.snap, self.flow)),
        )

    def action_flow(self) -> None:
        if self.flow is None or self.snap is None:
            self.notify("this event names no datapath flow of the shown dump", severity="warning")
            return
        self.app.push_screen(FlowScreen(self.flow, self.feed, self.snap))

    def action_back(self) -> None:
        self.dismiss(None)
