"""Per-flow packet and byte rates, from the same datapath flow (by ufid) seen in consecutive rounds."""

from __future__ import annotations

from typing import Any


class FlowRates:
    """Remembers each flow's last counters; a flow seen for the first time, or whose counters went down
    (deleted and re-installed under the same ufid), gets no rate rather than a wrong one."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, float, float]] = {}

    def annotate(self, rows: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        """New rows: each row with a ``ufid`` gets ``packets_rate`` and ``bytes_rate`` (per second, or None).

        The rows handed in are left as they are (they may already be part of a snapshot, which is immutable).
        """
        seen: dict[str, tuple[float, float, float]] = {}
        out: list[dict[str, Any]] = []
        for row in rows:
            ufid = row.get("ufid")
            if not ufid:
                out.append(row)
                continue
            packets, nbytes = float(row.get("packets") or 0), float(row.get("bytes") or 0)
            prev = self._last.get(ufid)
            packets_rate = bytes_rate = None
            if prev is not None and now > prev[0] and packets >= prev[1] and nbytes >= prev[2]:
                packets_rate = (packets - prev[1]) / (now - prev[0])
                bytes_rate = (nbytes - prev[2]) / (now - prev[0])
            out.append({**row, "packets_rate": packets_rate, "bytes_rate": bytes_rate})
            seen[ufid] = (now, packets, nbytes)
        self._last = seen
        return out
