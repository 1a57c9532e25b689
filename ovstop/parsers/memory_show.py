"""``memory/show``: ``key:value`` tokens (handlers, revalidators, ports, rules, udpif keys …)."""

from __future__ import annotations

import re

from ovstop.errors import ParseError
from ovstop.parsers._text import require_text

COMMAND = "memory/show"

# Keys may hold spaces ("udpif keys:12"), so a key runs from the end of the previous value to the colon.
_TOKEN = re.compile(r"\s*([^:\s][^:]*?):(\d+)(?=\s|$)")


def parse(text: str) -> dict[str, int]:
    """Every integer-valued figure; no figure at all is an error."""
    text = require_text(COMMAND, text)
    values = {m.group(1): int(m.group(2)) for m in _TOKEN.finditer(text)}
    if not values:
        raise ParseError(f"{COMMAND}: no key:value figure in {text.strip()[:60]!r}")
    return values
