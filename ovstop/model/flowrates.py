"""Per-flow packet and byte rates, from the same datapath flow (by ufid) seen in consecutive rounds."""

from __future__ import annotations

from typing import Any


class FlowRates:
    """Remembers each flow's last counters; a flow seen for the first time, or whose counters went down
    (deleted and re-installed under the same ufid), gets no rate rather than a wrong one."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, float, float]] = {}

    def annotate(self, rows: list[dict[str, Any]], now: float) -> None:
        """Add ``packets_rate`` and ``bytes_rate`` (per second, or None) to each row with a ``ufid``."""
        seen: dict[str, tuple[float, float, float]] = {}
        for row in rows:
            ufid = row.get("ufid")
            if not ufid:
                continue
            packets, nbytes = float(row.get("packets") or 0), float(row.get("bytes") or 0)
            prev = self._last.get(ufid)
            row["packets_rate"] = row["bytes_rate"] = None
            if prev is not None and now > prev[0] and packets >= prev[1] and nbytes >= prev[2]:
                row["packets_rate"] = (packets - prev[1]) / (now - prev[0])
                row["bytes_rate"] = (nbytes - prev[2]) / (now - prev[0])
            seen[ufid] = (now, packets, nbytes)
        self._last = seen
