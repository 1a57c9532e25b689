"""``dpctl/ct-get-nconns`` and ``dpctl/ct-get-maxconns``: a single number."""

from __future__ import annotations

from ovstop.parsers._text import require_text, to_int

COMMAND = "dpctl/ct-get-nconns"


def parse(text: str, command: str = COMMAND) -> int:
    """The number; ``command`` only names the command in the error message."""
    return to_int(command, "reply", require_text(command, text).strip())
