"""``dpif-netdev/pmd-rxq-show``: which PMD polls which rx queue, and how much of the PMD each queue uses.

OVS prints ``pmd usage: NOT AVAIL`` until a queue has a full measurement interval behind it; that is
kept as None (unknown), not 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ovstop.errors import ParseError
from ovstop.parsers._text import require_text, to_int
from ovstop.parsers.pmd_thread import THREAD_HEADER, PmdThread, header

COMMAND = "dpif-netdev/pmd-rxq-show"

_QUEUE = re.compile(
    r"^port:\s+(\S+)\s+queue-id:\s+(\d+)(?:\s+\((enabled|disabled)\))?\s+pmd usage:\s*(?:(\d+)\s*%|(NOT AVAIL))$"
)


@dataclass(frozen=True)
class RxQueue:
    thread: PmdThread
    port: str
    queue: int
    enabled: bool
    usage: float | None
    """Fraction (0..1) of the PMD's cycles this queue used over the last measurement window."""


def parse(text: str) -> tuple[RxQueue, ...]:
    """Queues in output order; a queue line before any thread header is an error."""
    text = require_text(COMMAND, text)
    thread: PmdThread | None = None
    seen_thread = False
    queues: list[RxQueue] = []
    for raw in text.splitlines():
        line = raw.strip()
        if m := THREAD_HEADER.match(line):
            thread, seen_thread = header(m), True
            continue
        if not line.startswith("port:"):
            continue
        m = _QUEUE.match(line)
        if m is None:
            raise ParseError(f"{COMMAND}: unrecognised queue line: {line[:60]!r}")
        if thread is None:
            raise ParseError(f"{COMMAND}: queue before any thread header: {line[:60]!r}")
        usage = None if m.group(5) else to_int(COMMAND, "pmd usage", m.group(4)) / 100.0
        queues.append(
            RxQueue(thread, m.group(1), to_int(COMMAND, "queue-id", m.group(2)), m.group(3) != "disabled", usage)
        )
    if not seen_thread:
        raise ParseError(f"{COMMAND}: no thread found")
    return tuple(queues)
