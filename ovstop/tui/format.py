"""Text helpers shared by the panes: compact numbers, rates, durations, sparklines and bars.

Pure functions, no Textual: they decide what a number looks like in a 6-character cell.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

SPARKS = "▁▂▃▄▅▆▇█"
DASH = "–"


def num(x: float | None) -> str:
    """``1234567`` -> ``1.23M``; small values keep up to 2 decimals; None -> a dash."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return DASH
    if math.isinf(x):
        return "inf"
    ax = abs(x)
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if ax >= div:
            return f"{x / div:.3g}{suffix}"
    if ax == int(ax):
        return str(int(x))
    return f"{x:.3g}"


def pct(part: float | None, whole: float | None) -> str:
    if part is None or not whole:
        return DASH
    return f"{100.0 * part / whole:.1f}%"


def duration(seconds: float | None) -> str:
    """``3725`` -> ``1h02m``; under a minute in seconds."""
    if seconds is None:
        return DASH
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def sparkline(values: Sequence[float], width: int = 16) -> str:
    """The last ``width`` values as block characters scaled between their min and max."""
    tail = [v for v in values[-width:] if math.isfinite(v)]
    if not tail:
        return ""
    lo, hi = min(tail), max(tail)
    span = hi - lo
    if span <= 0:
        return SPARKS[0 if hi == 0 else 3] * len(tail)
    return "".join(SPARKS[min(int((v - lo) / span * (len(SPARKS) - 1) + 0.5), len(SPARKS) - 1)] for v in tail)


def bar(fraction: float, width: int) -> str:
    """A horizontal bar ``width`` cells wide filled to ``fraction`` (eighth-cell resolution)."""
    eighths = round(max(0.0, min(fraction, 1.0)) * width * 8)
    full, rest = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[rest] if rest else ""
    return ("█" * full + partial).ljust(width)


def bound(x: float) -> str:
    """A histogram bucket's upper bound."""
    return "+Inf" if math.isinf(x) else num(x)


def short_ufid(ufid: str | None) -> str:
    return (ufid or DASH)[:8]


_NOISE = ("recirc_id(0),", "packet_type(ns=0,id=0),")


def key_summary(key: str) -> str:
    """A datapath flow key without the fields every first-pass flow has (recirc_id 0, Ethernet packet type)."""
    for noise in _NOISE:
        key = key.replace(noise, "")
    return key


def at_clock(text: str, reference: float) -> float:
    """``HH:MM[:SS]`` local time on ``reference``'s day, as a timestamp; ValueError when it is not a time."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise ValueError(text)
    hour, minute, second = (int(p) for p in (*parts, "0")[:3])
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(text)
    day = time.localtime(reference)
    return time.mktime((day.tm_year, day.tm_mon, day.tm_mday, hour, minute, second, 0, 0, -1))
