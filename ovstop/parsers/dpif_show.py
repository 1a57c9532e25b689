"""``dpif/show``: per datapath backer the hit/missed counters, its bridges and their ports.

Accepts the text format (all versions) and the JSON document OVS 3.4+ answers on a connection set to JSON
(what ``ovs-appctl -f json dpif/show`` prints): per backer ``bridges`` (bridge -> port -> ``ofport``,
``port_no``, ``type``, optional ``config``) and ``stats`` (``hit``, ``missed``), every number a string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ovstop.errors import ParseError
from ovstop.parsers._text import key_values, require_text, to_int
from ovstop.parsers.reply import JsonReply, Reply, json_object

COMMAND = "dpif/show"

_DP = re.compile(r"^(\S+@\S+): (.*)$")
_BRIDGE = re.compile(r"^  (\S+):$")
_PORT = re.compile(r"^    (\S+) (\d+)/(\d+|none):? \((.*)\)$")


@dataclass(frozen=True)
class DpifPort:
    """One bridge port: OpenFlow port number, datapath port number (None when unmapped), netdev type."""

    name: str
    ofport: int
    port_no: int | None
    type: str
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DpifDatapath:
    name: str
    hit: int
    missed: int
    bridges: dict[str, tuple[DpifPort, ...]]


def _config(items: str) -> dict[str, str]:
    config: dict[str, str] = {}
    for item in items.split(", "):
        key, sep, value = item.partition("=")
        if sep:
            config[key.strip()] = value
    return config


def _port(m: re.Match[str]) -> DpifPort:
    name, ofport, port_no, inner = m.groups()
    ptype, _, items = inner.partition(": ")
    return DpifPort(
        name=name,
        ofport=int(ofport),
        port_no=None if port_no == "none" else int(port_no),
        type=ptype,
        config=_config(items) if items else {},
    )


def _parse_text(text: str) -> tuple[DpifDatapath, ...]:
    datapaths: list[DpifDatapath] = []
    bridge: list[DpifPort] | None = None
    current = ""
    for line in text.splitlines():
        if not line.strip():
            continue
        if m := _DP.match(line):
            kv = key_values(m.group(2))
            if "hit" not in kv or "missed" not in kv:
                raise ParseError(f"{COMMAND}: datapath line without hit/missed: {line[:60]!r}")
            datapaths.append(
                DpifDatapath(
                    m.group(1),
                    to_int(COMMAND, "hit", kv["hit"]),
                    to_int(COMMAND, "missed", kv["missed"]),
                    {},
                )
            )
            bridge = None
        elif (m := _BRIDGE.match(line)) and datapaths:
            bridge = []
            datapaths[-1].bridges[m.group(1)] = ()
            current = m.group(1)
        elif (m := _PORT.match(line)) and bridge is not None:
            bridge.append(_port(m))
            datapaths[-1].bridges[current] = tuple(bridge)
        elif not line.startswith(" "):
            raise ParseError(f"{COMMAND}: unexpected line {line[:60]!r}")
    if not datapaths:
        raise ParseError(f"{COMMAND}: no datapath found")
    return tuple(datapaths)


def _json_int(value: object, what: str) -> int:
    return to_int(COMMAND, what, str(value))


def _parse_json(reply: JsonReply) -> tuple[DpifDatapath, ...]:
    doc = json_object(COMMAND, reply)
    try:
        datapaths = []
        for name, body in doc.items():
            bridges = {}
            for br, ports in body.get("bridges", {}).items():
                bridges[br] = tuple(
                    DpifPort(
                        name=port,
                        ofport=_json_int(p["ofport"], "ofport"),
                        port_no=None if p["port_no"] == "none" else _json_int(p["port_no"], "port_no"),
                        type=str(p.get("type", "")),
                        config={str(k): str(v) for k, v in p.get("config", {}).items()},
                    )
                    for port, p in sorted(ports.items())
                )
            stats = body["stats"]
            datapaths.append(
                DpifDatapath(name, _json_int(stats["hit"], "hit"), _json_int(stats["missed"], "missed"), bridges)
            )
    except (KeyError, TypeError, AttributeError) as e:
        raise ParseError(f"{COMMAND}: malformed JSON reply ({e})") from None
    if not datapaths:
        raise ParseError(f"{COMMAND}: no datapath found")
    return tuple(datapaths)


_COUNTED = re.compile(r"^(\S+@\S+: )(.*)$", re.MULTILINE)
_DIGITS = re.compile(r"\d+")


def ports_part(reply: Reply) -> object:
    """``reply`` without its numbers of packets (hit, missed), which move with every upcall: equal between
    two replies exactly when their datapaths, bridges and ports are, and their counters are as well-formed.

    A port mapping needs parsing only when this changes: with traffic on a 1,000-port switch the reply
    changes every time it is read, its 1,000 port lines every few minutes."""
    if isinstance(reply, JsonReply):
        doc = reply.value
        if not isinstance(doc, dict):
            return doc
        return {
            name: {k: _DIGITS.sub("", str(v)) if k == "stats" else v for k, v in body.items()}
            if isinstance(body, dict)
            else body
            for name, body in doc.items()
        }
    if not isinstance(reply, str):
        return reply
    return _COUNTED.sub(lambda m: m.group(1) + _DIGITS.sub("", m.group(2)), reply)


def parse(reply: Reply) -> tuple[DpifDatapath, ...]:
    """Datapaths in output order; raises ParseError on anything that is not ``dpif/show`` output."""
    if isinstance(reply, JsonReply):
        return _parse_json(reply)
    return _parse_text(require_text(COMMAND, reply))
