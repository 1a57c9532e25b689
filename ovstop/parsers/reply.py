"""What a unixctl command answers: text, or a JSON document.

From OVS 3.4 a client may ask its connection for JSON (``set-options --format json``). On such a
connection the few commands that have a JSON form answer a document (see README, "unixctl output
formats"), and every other command answers its usual text wrapped as
``{"reply-format": "plain", "reply": TEXT}``. :func:`reply_of` turns either kind of answer into a
:data:`Reply`, so a parser sees text, or a :class:`JsonReply` holding a real document, never the wrapper.

The JSON-RPC result reaches :func:`reply_of` as the peer sent it, parsed: ovstop reads it through its own
connection (``ovstop.sources.jsonrpc``), not ``ovs.unixctl.client``, whose ``transact`` returns
``str(result)`` before OVS 3.4 and the parsed result from 3.4 on. A result that is already a string is
text, whichever library delivered it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ovstop.errors import ParseError

JSON = "json"
TEXT = "text"


@dataclass(frozen=True)
class JsonReply:
    """A JSON document a command sent as its answer (OVS 3.4+, on a connection set to JSON)."""

    value: Any


Reply = str | JsonReply


def reply_of(result: object) -> Reply:
    """The JSON-RPC ``result`` of one unixctl request as text or a document (plain wrappers unwrapped)."""
    if isinstance(result, str):
        return result
    if isinstance(result, dict) and result.get("reply-format") == "plain":
        text = result.get("reply")
        if not isinstance(text, str):
            raise ParseError(f"plain reply without text: {type(text).__name__}")
        return text
    return JsonReply(result)


def format_of(reply: Reply) -> str:
    """``json`` or ``text``: the form the switch answered in."""
    return JSON if isinstance(reply, JsonReply) else TEXT


def json_object(command: str, reply: JsonReply) -> dict[str, Any]:
    """The document of ``reply`` when it is a JSON object, else a ParseError naming ``command``."""
    if not isinstance(reply.value, dict):
        raise ParseError(f"{command}: JSON reply is a {type(reply.value).__name__}, not an object")
    return reply.value
