"""``dpctl/dump-flows -m``: datapath flows, decoded with ``ovs.flow.odp.ODPFlow``.

Work is bounded: at most ``max_flows`` flows are decoded, the rest are only counted. Decoding a flow's
match with ``ODPFlow`` costs about 0.25 ms, far more than the rest of a round, while a flow's match never
changes over its life; so callers may pass ``known`` (ufid -> key summary) and only new flows are decoded,
the counters of known ones being read with a plain pattern.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from ovs.flow.odp import ODPFlow

from ovstop.errors import ParseError
from ovstop.parsers._text import require_text

COMMAND = "dpctl/dump-flows"

_PMD_HEADER = "flow-dump from pmd on cpu core: "
_MAIN_HEADER = "flow-dump from the main thread:"


_UFID = re.compile(r"^ufid:([0-9a-f-]+),")
_OFFLOADED = re.compile(r" offloaded:([^,\s]+),")
_STATS = re.compile(r", packets:(\d+), bytes:(\d+), used:([^,]+)(.*?), actions:(.*)$")
_INFO = re.compile(r"(dp|offloaded|flags):([^,]*)")
_MATCH = re.compile(r"^(?:ufid:[0-9a-f-]+, )?(.*?), packets:")
# Fully wildcarded parts of a match: whole fields ``skb_mark(0/0)`` and subfields ``ttl=64/0``.
_WILD_FIELD = re.compile(r"\b[a-z_]+\(0/0\),?")
_WILD_SUB = re.compile(r",?\b[a-z_]+=[^,()/]+/(?:0x0|0|0\.0\.0\.0|00(?::00){5}|::)(?=[,)])")


@dataclass(frozen=True)
class DpFlow:
    """One datapath flow. ``key`` is the match without fully wildcarded fields; ``used_s`` is seconds
    since the last packet (None for ``never``); ``pmd`` is ``pmd-c<core>``/``main`` on the userspace
    datapath, None elsewhere."""

    ufid: str | None
    key: str
    actions: str
    packets: int
    bytes: int
    used_s: float | None
    dp: str | None
    offloaded: str | None
    flags: str | None
    pmd: str | None


@dataclass(frozen=True)
class DumpFlows:
    flows: tuple[DpFlow, ...]
    total: int
    """Number of flow lines in the output, decoded or not."""

    @property
    def truncated(self) -> bool:
        return self.total > len(self.flows)


def _wildcarded(value: Any) -> bool:
    mask = getattr(value, "mask", None)
    if mask is not None:
        return int(mask) == 0
    return isinstance(value, str) and value.endswith("/0")


def _format(value: Any, name: str = "") -> str:
    if name == "eth_type" and getattr(value, "fully", None) and value.fully():
        return f"0x{int(value.value):04x}"
    if getattr(value, "fully", None) and value.fully():
        return str(value.value)
    return str(value)


def _key_summary(match: dict[str, Any]) -> str:
    parts = []
    for name, value in match.items():
        if isinstance(value, dict):
            inner = ",".join(f"{k}={_format(v)}" for k, v in value.items() if not _wildcarded(v))
            if inner:
                parts.append(f"{name}({inner})")
        elif not _wildcarded(value):
            parts.append(f"{name}({_format(value, name)})")
    return ",".join(parts)


def quick_key(line: str) -> str:
    """The match without its wildcarded parts, by pattern: a stand-in until ODPFlow decodes the flow."""
    m = _MATCH.match(line)
    if m is None:
        return ""
    key = re.sub(r"\(,", "(", _WILD_SUB.sub("", _WILD_FIELD.sub("", m.group(1))))
    return re.sub(r"\b[a-z_0-9]+\(\),?", "", key).strip(",")


def _known_flow(line: str, pmd: str | None, ufid: str, key: str) -> DpFlow | None:
    """The flow read without ODPFlow, for a ufid whose key is already known; None if the line is unusual."""
    m = _STATS.search(line)
    if m is None:
        return None
    packets, nbytes, used, info_text, actions = m.groups()
    info = dict(_INFO.findall(info_text))
    actions = actions.split(", dp-extra-info:", 1)[0].strip().rstrip(",").strip()
    return DpFlow(
        ufid=ufid,
        key=key,
        actions=actions,
        packets=int(packets),
        bytes=int(nbytes),
        used_s=None if used == "never" else float(used.rstrip("s")),
        dp=info.get("dp"),
        offloaded=info.get("offloaded"),
        flags=info.get("flags"),
        pmd=pmd,
    )


def _flow(line: str, pmd: str | None, known: MutableMapping[str, str] | None = None, decode: bool = True) -> DpFlow:
    if known is not None:
        m = _UFID.match(line)
        if m and (m.group(1) in known or not decode):
            key = known[m.group(1)] if m.group(1) in known else quick_key(line)
            try:
                fast = _known_flow(line, pmd, m.group(1), key)
            except ValueError:
                fast = None
            if fast is not None:
                return fast
    try:
        # ovs.flow before 3.2 (Debian 12's python3-openvswitch) knows neither the userspace datapath's trailing
        # "dp-extra-info:miniflow_bits(...)" (not used here) nor "offloaded:" (read from the text instead).
        offloaded = _OFFLOADED.search(line)
        f = ODPFlow(_OFFLOADED.sub("", line.split(", dp-extra-info:", 1)[0]))
        info = f.info or {}
        used = info.get("used")
        actions = f.section("actions")
        flow = DpFlow(
            ufid=(f.ufid or {}).get("ufid"),
            key=_key_summary(f.match or {}),
            actions=actions.string.strip().rstrip(",").strip() if actions else "",
            packets=int(info.get("packets", 0)),
            bytes=int(info.get("bytes", 0)),
            used_s=None if used in (None, "never") else float(used),
            dp=info.get("dp"),
            offloaded=offloaded[1] if offloaded else None,
            flags=info.get("flags"),
            pmd=pmd,
        )
    except ParseError:
        raise
    except Exception as e:  # ovs.flow raises bare ValueError/KeyError/… on text it cannot decode.
        raise ParseError(f"{COMMAND}: cannot decode flow {line[:60]!r} ({e})") from None
    if known is not None and flow.ufid:
        known[str(flow.ufid)] = flow.key
    return flow


def parse(
    text: str,
    max_flows: int | None = None,
    known: MutableMapping[str, str] | None = None,
    max_decodes: int | None = None,
) -> DumpFlows:
    """Flows in output order; an empty datapath (empty output) gives no flows.

    ``known`` (ufid -> key summary) is read to skip decoding known flows and is filled with new ones;
    with it, at most ``max_decodes`` new flows go through ODPFlow in this call, the others get a
    pattern-made key (:func:`quick_key`) and are decoded by a later call.
    """
    decodes = 0
    if isinstance(text, str) and not text.strip():
        return DumpFlows((), 0)
    text = require_text(COMMAND, text)
    flows: list[DpFlow] = []
    total = 0
    pmd: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith(_PMD_HEADER):
            core = line.removeprefix(_PMD_HEADER)
            if not core.isdigit():
                raise ParseError(f"{COMMAND}: bad pmd header {line[:60]!r}")
            pmd = f"pmd-c{core}"
            continue
        if line == _MAIN_HEADER:
            pmd = "main"
            continue
        total += 1
        if max_flows is None or len(flows) < max_flows:
            decode = max_decodes is None or decodes < max_decodes
            if known is not None and decode and not ((m := _UFID.match(line)) and m.group(1) in known):
                decodes += 1
            flows.append(_flow(line, pmd, known, decode))
    return DumpFlows(tuple(flows), total)
