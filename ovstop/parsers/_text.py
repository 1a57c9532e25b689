"""Small helpers shared by the unixctl text parsers: number conversion that fails with ParseError."""

from __future__ import annotations

import re

from ovstop.errors import ParseError

_KV = re.compile(r"([A-Za-z][\w./-]*):(\S+)")


def to_int(command: str, what: str, text: str) -> int:
    """``int(text)`` or a ParseError naming the command and the field."""
    try:
        return int(text)
    except ValueError:
        raise ParseError(f"{command}: {what} is not an integer: {text[:40]!r}") from None


def to_float(command: str, what: str, text: str) -> float:
    """``float(text)`` or a ParseError naming the command and the field."""
    try:
        return float(text)
    except ValueError:
        raise ParseError(f"{command}: {what} is not a number: {text[:40]!r}") from None


def opt_int(command: str, what: str, text: str) -> int | None:
    """Like :func:`to_int`, but OVS's ``?`` (statistic not supported) becomes None."""
    return None if text == "?" else to_int(command, what, text)


def key_values(text: str) -> dict[str, str]:
    """All ``key:value`` tokens in ``text`` (``hit:12 missed:3`` -> ``{"hit": "12", "missed": "3"}``)."""
    return {m.group(1): m.group(2) for m in _KV.finditer(text)}


def require_text(command: str, text: object) -> str:
    """Reject non-text and empty input up front so every parser fails the same way."""
    if not isinstance(text, str):
        raise ParseError(f"{command}: expected text, got {type(text).__name__}")
    if not text.strip():
        raise ParseError(f"{command}: empty output")
    return text
