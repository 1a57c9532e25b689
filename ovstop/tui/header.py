"""The status bar at the top: identity, refresh, source health, PAUSED/STALE badges and headline rates."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import Static

from ovstop import health
from ovstop.collect.demand import SUMMARY
from ovstop.model.store import Snapshot
from ovstop.tui.format import duration, num
from ovstop.tui.headline import clock_text, headline
from ovstop.tui.view import ViewState

_MARKS = {"up": ("●", "$success"), "degraded": ("◐", "$warning"), "down": ("○", "$error"), "off": ("◌", "$warning")}


def check_badges(table: list[dict[str, Any]]) -> list[str | tuple[str, str]]:
    """A badge per failing health check, else how many pass (unknown ones are in the ``h`` list)."""
    failing = health.failing(table)
    if failing:
        return [part for name in failing for part in ((f" ✗ {name} ", "reverse $error"), " ")] + [" "]
    passing = sum(r.get("state") == health.OK for r in table)
    return [(f"✓ {passing} checks ok", "$success"), "  "] if passing else []


class HeaderBar(Static):
    """Three lines; rebuilt from the snapshot and the view state, updated only when the text changes."""

    needs = SUMMARY
    """Needed whatever pane is shown: the headline figures, and the health checks, whose inputs span the whole
    tree but for the flow dump (panes 3 and 4) and the per-interface series (panes 1, 5 and 6)."""

    def show(self, snap: Snapshot | None, view: ViewState, paused: bool, started: float) -> None:
        content = self.render_content(snap, view, paused, started)
        if content.plain != getattr(self, "_plain", None) or content.spans != getattr(self, "_spans", None):
            self._plain, self._spans = content.plain, content.spans
            self.update(content)

    @staticmethod
    def render_content(snap: Snapshot | None, view: ViewState, paused: bool, started: float) -> Content:
        feed = view.feed
        pace = f"replay ×{getattr(feed, 'speed', 1.0):g}" if feed.kind == "replay" else f"every {feed.interval:g}s"
        if feed.kind == "remote":
            pace = f"{pace}  remote {getattr(feed, 'host', '')} (read-only)"
        if snap is None:
            return Content.assemble(("ovstop", "bold"), f"  {pace}  waiting for the first sample…")
        h = headline(snap, feed.events_reason)
        parts: list[str | tuple[str, str]] = [
            ("ovstop ", "bold"),
            f"{h.host}  OVS {h.ovs_version}  dp {h.datapaths}  ",
            f"up {duration(h.ovs_uptime) if h.ovs_uptime is not None else '–'}  "
            f"session {duration(view.clock() - started)}  {pace}  #{snap.seq}",
        ]
        if view.viewing:  # first, so that even a narrow terminal shows it is looking at the past
            parts[:0] = [(f" {view.viewing} ", "reverse $warning"), " "]
        if paused:
            parts += ["  ", (" PAUSED ", "reverse $warning")]

        # A failed round delivers nothing: what is shown is the last good one, and the reason leads line two.
        stale_since = snap.timestamp if feed.failure else h.stale_since
        if stale_since is not None:
            parts += ["  ", (f" STALE since {clock_text(stale_since)} ", "reverse $error")]
        if h.self_cost:  # after the badges: on a narrow terminal it is what gets cut
            parts.append(f"  {h.self_cost}")
        parts.append("\n")
        if feed.failure:
            parts += [(feed.failure, "bold $error"), "  "]
        parts += check_badges(health.rows(snap))
        for name, state, reason in h.health:
            mark, style = _MARKS[state]
            if state == "off":  # not a problem: the short cause only ("not configured", "needs root" …)
                reason = reason.split(" (")[0][:32]
            parts += [(f"{mark} {name} {state}", style), f": {reason[:40]}  " if reason else "  "]
        parts.append("\n")
        parts += [
            f"{num(h.pps)} pkt/s  dp hit {num(h.hit)}/s miss {num(h.missed)}/s lost {num(h.lost)}/s  ",
            ("hit ", "bold"),
            f"{h.hit_ratio}  upcalls {num(h.missed)}/s  flows {h.flows}  ",
            f"handlers {h.handlers} revalidators {h.revalidators}",
        ]
        return Content.assemble(*parts)
