"""Explain a datapath flow: the OpenFlow path that produced it, from ``ofproto/detrace`` by its ufid where the
switch offers it (OVS 3.4+: the rules its translation cache recorded when it built the flow), else from
``ofproto/trace`` on the flow's own key.

Asked on demand (unixctl calls on the persistent connection: the flow's whole key by ufid, then detrace or
the trace), never per refresh. The trace's text is parsed into the steps traversed (bridge, table, priority,
cookie, match, the actions each rule ran), the notes OVS adds (``>> …``, ``-> …``), and the final lines
(megaflow, datapath actions); detrace's into the same steps, its megaflow and actions being the flow's own.
OVN: each step's cookie names its southbound Logical_Flow and, through it, the northbound object (see
:func:`ovn_flows`), as ovn-detrace does. No Textual here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ovstop.collect.base import Sources
from ovstop.errors import OvstopError, ParseError, SourceError
from ovstop.parsers._text import require_text
from ovstop.sources.ovn import DETRACE_NB, OvnLink

COMMAND = "ofproto/trace"
_BRIDGE = re.compile(r'^(\s*)bridge\("([^"]+)"\)$')
_RULE = re.compile(r"^(\s*)(\d+)\. (?:(.*?), )?priority (\d+)(?:, cookie (0x[0-9a-f]+))?$")
_NO_MATCH = re.compile(r"^(\s*)(\d+)\. No match\.?$")
_FINAL = {"Final flow": "final_flow", "Megaflow": "megaflow", "Datapath actions": "datapath_actions"}


@dataclass
class Step:
    """One OpenFlow table visited: the rule that matched (None priority for a miss) and what it did."""

    bridge: str
    depth: int
    """Resubmit/recirculation nesting, from the trace's indentation (0 for the first table)."""
    table: int
    match: str
    priority: int | None
    cookie: str
    actions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Trace:
    flow: str = ""
    steps: list[Step] = field(default_factory=list)
    final_flow: str = ""
    megaflow: str = ""
    datapath_actions: str = ""
    sections: list[str] = field(default_factory=list)
    """Recirculation and other section headers OVS prints (``Recirc …``, ``resume conntrack …``)."""


def _depth(indent: str) -> int:
    """Nesting (resubmit, patch port) from a table line's indentation: one space, then four per level."""
    return max(len(indent) - 1, 0) // 4


def parse_trace(text: str) -> Trace:
    """``ofproto/trace``'s text as a :class:`Trace`; ParseError when it is not a trace."""
    text = require_text(COMMAND, text)
    trace = Trace()
    bridge = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or set(line.strip()) <= {"-", "="}:
            continue
        if line.startswith("Flow: "):
            trace.flow = trace.flow or line.removeprefix("Flow: ")
            continue
        head, sep, rest = line.partition(": ")
        if sep and head in _FINAL:
            setattr(trace, _FINAL[head], rest)
            continue
        if m := _BRIDGE.match(line):
            bridge = m.group(2)
            continue
        if m := _NO_MATCH.match(line):
            trace.steps.append(Step(bridge, _depth(m.group(1)), int(m.group(2)), "No match", None, ""))
            continue
        if m := _RULE.match(line):
            trace.steps.append(
                Step(bridge, _depth(m.group(1)), int(m.group(2)), m.group(3) or "", int(m.group(4)), m.group(5) or "")
            )
            continue
        stripped = line.strip()
        if not trace.steps or not line.startswith(" "):
            trace.sections.append(stripped)
        elif stripped.startswith((">>", "->")):
            trace.steps[-1].notes.append(stripped)
        else:
            trace.steps[-1].actions.append(stripped)
    if not trace.flow or not trace.datapath_actions:
        raise ParseError(f"{COMMAND}: no 'Flow:' or 'Datapath actions:' line (not a trace)")
    return trace


DETRACE = "ofproto/detrace"
_DETRACE_RULE = re.compile(
    r"^(?:cookie=(0x[0-9a-f]+), )?(?:table_id=(\d+), )?duration=[^,]*, n_packets=\d+, n_bytes=\d+, "
    r"(?:n_offload_packets=\d+, n_offload_bytes=\d+, )?(.*?),actions=(.*)$"
)
_DETRACE_MISS = re.compile(r"^table_id=(\d+), no match$")
_PRIORITY = re.compile(r"^priority=(\d+),?")
DEFAULT_PRIORITY = 32768
"""OpenFlow's default rule priority, which OVS leaves out when it prints a rule."""
_NOT_FOUND = ("UFID was not found for ", "Cache was not found for ")


def _detrace_step(bridge: str, line: str) -> Step | None:
    if m := _DETRACE_MISS.match(line):
        return Step(bridge, 0, int(m.group(1)), "No match", None, "")
    if m := _DETRACE_RULE.match(line):
        match = m.group(3)
        p = _PRIORITY.match(match)
        priority = int(p.group(1)) if p else DEFAULT_PRIORITY
        match = (match[p.end() :] if p else match).strip(",")
        return Step(bridge, 0, int(m.group(2) or 0), match, priority, m.group(1) or "", [m.group(4)])
    return None


def parse_detrace(text: str) -> list[Step]:
    """``ofproto/detrace``'s rules as steps, in the order the translation visited them; a group bucket is a
    note on the rule before it. SourceError when no datapath knows the flow (or no longer caches its rules),
    ParseError for a line that is none of these."""
    text = require_text(DETRACE, text)
    steps: list[Step] = []
    bridge, missing = "", []
    for raw in text.splitlines():
        line = raw.strip()  # rules are indented under their bridge, but a reply may come with its start trimmed
        if not line:
            continue
        if line.startswith(_NOT_FOUND):
            missing.append(line)
        elif (step := _detrace_step(bridge, line)) is not None:
            steps.append(step)
        elif line.startswith("group_id=") and steps:
            steps[-1].notes.append(f"group {line}")
        elif "=" not in line and " " not in line:  # a bridge's name (later OVS releases print it above its rules)
            bridge = line
        else:
            raise ParseError(f"{DETRACE}: not a rule: {line[:60]!r}")
    if not steps:
        raise SourceError(f"{DETRACE}: " + ("; ".join(missing) or "no rule"))
    return steps


def detrace_args(row: Mapping[str, Any]) -> list[str]:
    """``ufid:…`` and, for a flow of a PMD thread (``pmd-c<core>``), ``pmd=<core>``: the kernel's and the
    main thread's flows are found without one."""
    args = [f"ufid:{row.get('ufid')}"]
    pmd = str(row.get("pmd") or "")
    if pmd.startswith("pmd-c") and pmd[5:].isdigit():
        args.append(f"pmd={pmd[5:]}")
    return args


class Caller(Protocol):
    def call(self, command: str, *args: str) -> str: ...

    def has(self, command: str) -> bool: ...


GET_FLOW = "dpctl/get-flow"


def full_key(client: Caller, row: Mapping[str, Any]) -> str:
    """The flow's whole key as the datapath holds it (``dpctl/get-flow`` by ufid: one flow, not a dump).

    The flow table keeps only a summary of each key (its non-wildcarded fields, with masks); tracing
    needs every field."""
    datapath, ufid = str(row.get("datapath") or ""), str(row.get("ufid") or "")
    if not datapath or not ufid:
        raise OvstopError("this flow has no datapath or ufid to look up")
    text = require_text(GET_FLOW, client.call(GET_FLOW, datapath, f"ufid:{ufid}"))
    key, sep, _ = text.strip().partition(", packets:")
    if not sep or "(" not in key:
        raise ParseError(f"{GET_FLOW}: not a flow: {text[:60]!r}")
    return key


WILD_ETH = "eth(src=00:00:00:00:00:00,dst=00:00:00:00:00:00),"


def traceable(key: str) -> str:
    """``key`` as a packet for ofproto/trace. get-flow omits fields the megaflow wildcards; every value of
    them takes the same path (that is what the wildcard means), but an Ethernet packet without ``eth()``
    would be traced as a bare L3 packet, so a wildcarded Ethernet header is given as zeros."""
    if "eth(" in key or "eth_type(" not in key or ("packet_type(" in key and "packet_type(ns=0," not in key):
        return key
    return key.replace("eth_type(", WILD_ETH + "eth_type(", 1)


def trace_args(row: Mapping[str, Any], key: str) -> list[str]:
    """What ``ofproto/trace`` needs: the datapath's name (``ovs-netdev`` of ``netdev@ovs-netdev``) and a key."""
    datapath = str(row.get("datapath") or "")
    if "@" not in datapath or not key:
        raise OvstopError("this flow has no datapath or key to trace")
    return [datapath.partition("@")[2], key]


@dataclass(frozen=True)
class LogicalFlow:
    """A southbound Logical_Flow and the northbound object its stage-hint names (ovn-detrace's answer)."""

    cookie: str
    uuid: str
    pipeline: str
    table: int
    stage: str
    match: str
    actions: str
    nb: str
    """``ACL 1a2b3c4d: to-lport … drop`` and the like, or "" when the flow names no NB object."""


class Rows(Protocol):
    def rows(self, table: str) -> list[dict[str, Any]]: ...


def _nb_object(nb: Rows | None, hint: str) -> str:
    """``ACL 1a2b3c4d: from-lport 1001 … drop``: the NB row whose UUID starts with the stage-hint."""
    if nb is None or not hint:
        return ""
    for table, fields in DETRACE_NB.items():
        for r in nb.rows(table):
            if str(r.get("_uuid", "")).startswith(hint):
                return f"{table} {hint}: " + " ".join(str(r.get(f)) for f in fields if r.get(f) not in (None, ""))
    return ""


def _datapath_name(datapaths: Mapping[str, Any], groups: Mapping[str, Any], flow: Mapping[str, Any]) -> str:
    """The logical datapath's name, or ``N datapaths`` for a flow shared by a datapath group."""

    def name(uuid: str) -> str:
        return str((datapaths.get(uuid, {}).get("external_ids") or {}).get("name", ""))

    if flow.get("logical_datapath"):
        return name(flow["logical_datapath"])
    members = (groups.get(flow.get("logical_dp_group") or "", {}).get("datapaths")) or ()
    return name(next(iter(members))) if len(members) == 1 else f"{len(members)} datapaths" if members else ""


def ovn_flows(steps: Iterable[Step], sb: Rows, nb: Rows | None) -> list[LogicalFlow]:
    """The Logical_Flow behind each step's cookie, as ovn-detrace finds it: the cookie is the first 32 bits
    of the Logical_Flow's UUID; its ``stage-hint`` external_id is the first 32 bits of the NB object's."""
    wanted = list(dict.fromkeys(s.cookie.removeprefix("0x").rjust(8, "0") for s in steps if s.cookie))
    if not wanted:
        return []
    datapaths = {r["_uuid"]: r for r in sb.rows("Datapath_Binding")}
    groups = {r["_uuid"]: r for r in sb.rows("Logical_DP_Group")}
    by_prefix = {str(r.get("_uuid", ""))[:8]: r for r in sb.rows("Logical_Flow")}
    found = []
    for prefix in wanted:
        r = by_prefix.get(prefix)
        if r is None:
            continue
        ext = r.get("external_ids") or {}
        dp_name = _datapath_name(datapaths, groups, r)
        found.append(
            LogicalFlow(
                "0x" + prefix,
                str(r["_uuid"]),
                f"{dp_name} {r.get('pipeline', '')}".strip(),
                int(r.get("table_id") or 0),
                str(ext.get("stage-name", "")),
                str(r.get("match", "")),
                str(r.get("actions", "")),
                _nb_object(nb, str(ext.get("stage-hint", ""))),
            )
        )
    return found


@dataclass
class Explanation:
    row: Mapping[str, Any]
    key: str
    """The whole key, from the datapath (``dpctl/get-flow``)."""
    trace: Trace
    logical: list[LogicalFlow]
    ovn: str
    """Why there is no OVN answer ("no OVN here", an error), or "" when ``logical`` holds it."""
    method: str = COMMAND
    """Where the steps come from: ``ofproto/detrace`` (by ufid) or ``ofproto/trace`` (on the key)."""
    fallback: str = ""
    """Why detrace was not used although the switch has it (the flow left its cache …), else ""."""


def path_of(client: Caller, row: Mapping[str, Any], key: str) -> tuple[Trace, str, str]:
    """The flow's OpenFlow path, its method, and why not detrace when the switch has it but could not answer."""
    fallback = ""
    if client.has(DETRACE):
        try:
            steps = parse_detrace(client.call(DETRACE, *detrace_args(row)))
        except SourceError as exc:  # not in the cache (any more): the trace still answers
            fallback = str(exc)
        else:
            own = Trace(key, steps, megaflow=str(row.get("key") or ""), datapath_actions=str(row.get("actions") or ""))
            return own, DETRACE, ""
    return parse_trace(client.call(COMMAND, *trace_args(row, traceable(key)))), COMMAND, fallback


def explain_flow(sources: Sources, row: Mapping[str, Any]) -> Explanation:
    """The flow's OpenFlow path on the persistent unixctl connection (:func:`path_of`), then its cookies through
    OVN."""
    if sources.unixctl is None:
        raise OvstopError("explain needs a connection to ovs-vswitchd")
    key = full_key(sources.unixctl, row)
    trace, method, fallback = path_of(sources.unixctl, row, key)
    found = {"method": method, "fallback": fallback}
    link: OvnLink | None = sources.ovn
    if not any(s.cookie for s in trace.steps):
        return Explanation(row, key, trace, [], "no rule on the path has a cookie (not an OVN flow)", **found)
    if link is None:
        return Explanation(row, key, trace, [], "no OVN link in this run", **found)
    try:
        sb, nb = link.detrace_replicas(sources.ovsdb)
        logical = ovn_flows(trace.steps, sb, nb)
    except SourceError as exc:
        return Explanation(row, key, trace, [], f"OVN: {exc}", **found)
    return Explanation(row, key, trace, logical, "" if logical else "no Logical_Flow matches these cookies", **found)
