"""``list-commands``: the names of the commands a daemon offers (hidden ones are not listed).

Text (every version): a header line, then one ``  name  usage`` line per command. JSON (OVS 3.4+):
an object mapping each name to its usage.
"""

from __future__ import annotations

from ovstop.errors import ParseError
from ovstop.parsers._text import require_text
from ovstop.parsers.reply import JsonReply, Reply, json_object

COMMAND = "list-commands"
_HEADER = "The available commands are:"


def _parse_text(text: str) -> frozenset[str]:
    header, _, body = require_text(COMMAND, text).partition("\n")
    if header.strip() != _HEADER:
        raise ParseError(f"{COMMAND}: unexpected first line {header[:60]!r}")
    return frozenset(line.split()[0] for line in body.splitlines() if line.strip())


def _parse_json(reply: JsonReply) -> frozenset[str]:
    names = json_object(COMMAND, reply)
    if not names or not all(isinstance(usage, str) for usage in names.values()):
        raise ParseError(f"{COMMAND}: JSON reply is not an object of command usages")
    return frozenset(names)


def parse(reply: Reply) -> frozenset[str]:
    """Command names; raises ParseError on anything that is not ``list-commands`` output."""
    return _parse_json(reply) if isinstance(reply, JsonReply) else _parse_text(reply)
