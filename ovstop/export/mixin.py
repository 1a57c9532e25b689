"""Prometheus rules, their ``promtool test rules`` cases and a Grafana dashboard, generated from the metric specs.

Every metric name below is looked up in the catalogue of specs the collectors declare, so a renamed or
removed metric fails generation instead of leaving a rule or a panel that silently matches nothing; help
texts come from the same specs. The committed files under ``contrib/`` are this module's output, and a
test checks they are equal::

    python -m ovstop.export.mixin            # rewrite contrib/prometheus/* and contrib/grafana/*
    python -m ovstop.export.mixin --check    # exit 1 when the committed files differ
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ovstop.model.metric import Kind, MetricSpec

RULES_FILE = "prometheus/ovstop-rules.yml"
RULES_TEST_FILE = "prometheus/ovstop-rules.test.yml"
DASHBOARD_FILE = "grafana/ovstop-dashboard.json"
JOB = "ovstop"  # the scrape job name the rules and the dashboard expect


@cache
def catalog() -> dict[str, MetricSpec]:
    """Every metric ovstop can export, by name, from the collectors' own declarations and the per-scrape
    ones of /metrics."""
    from ovstop.collect.base import Sources
    from ovstop.collect.config import CollectConfig
    from ovstop.collect.registry import default_collectors
    from ovstop.collect.sampler import SELF_SPECS
    from ovstop.ebpf.collector import EbpfCollector
    from ovstop.export.prometheus import SCRAPE_SPECS
    from ovstop.model.labels import LabelMap

    specs: list[MetricSpec] = [*SELF_SPECS, *SCRAPE_SPECS]
    with contextlib.ExitStack() as stack:  # builds the collectors only; nothing connects
        for collector in default_collectors(CollectConfig(), LabelMap(), Sources(), stack):
            specs.extend(collector.specs)
    specs.extend(EbpfCollector.specs)
    return {s.name: s for s in specs}


def ebpf_metrics() -> set[str]:
    from ovstop.ebpf.collector import EbpfCollector

    return {s.name for s in EbpfCollector.specs}


def m(name: str) -> str:
    """``name``, after checking a collector declares it (generation fails on a drifted name)."""
    if name not in catalog():
        raise KeyError(f"no metric spec named {name!r}: rules and dashboard would match nothing")
    return name


def helptext(name: str) -> str:
    return catalog()[m(name)].help


# --- rules -------------------------------------------------------------------------------------------

HIT = "ovs_vswitchd_datapath_hit_total"
MISSED = "ovs_vswitchd_datapath_missed_total"
LOST = "ovs_vswitchd_datapath_lost_total"
COVERAGE = "ovs_vswitchd_coverage_total"
UPCALL_DROP = "datapath_drop_upcall_error"  # coverage counter: packets dropped because their upcall failed
SOURCE_UP = "ovstop_source_up"
DP = "instance, datapath"


def _rate(name: str, by: str, selector: str = "") -> str:
    return f"sum by ({by}) (rate({m(name)}{selector}[5m]))"


def _rate_either(
    what: str, kind: str = "interface", by: str = "instance, bridge, interface", window: str = "5m", selector: str = ""
) -> str:
    """rx + tx, each present or not: rate() drops the names, so a label keeps the two sides apart."""
    sides = " or ".join(
        f"label_replace(rate({m(f'ovs_vswitchd_{kind}_{way}_{what}_total')}{selector}[{window}]), "
        f'"direction", "{way}", "", "")'
        for way in ("rx", "tx")
    )
    return f"sum by ({by}) ({sides})"


RECORDING: dict[str, tuple[str, str]] = {
    # name: (expression, what it is)
    "ovs:datapath_upcalls:rate5m": (_rate(MISSED, DP), "upcalls per second (datapath misses sent to userspace)"),
    "ovs:datapath_lost:rate5m": (_rate(LOST, DP), "upcalls lost per second (no room in the upcall queue)"),
    "ovs:datapath_hit_ratio:rate5m": (
        f"{_rate(HIT, DP)} / ({_rate(HIT, DP)} + {_rate(MISSED, DP)})",
        "share of lookups the datapath cache hit",
    ),
    "ovs:upcall_failures:rate5m": (
        # coverage/show omits counters never hit: with the switch answering, no series means zero.
        f"{_rate(COVERAGE, 'instance', f'{{counter={UPCALL_DROP!r}}}')} "
        f'or sum by (instance) ({m(SOURCE_UP)}{{source="unixctl"}}) * 0'.replace("'", '"'),
        f"packets dropped per second because their upcall failed (coverage counter {UPCALL_DROP})",
    ),
    "ovs:upcall_flows_limit:ratio": (
        f"max by ({DP}) ({m('ovs_vswitchd_upcall_flows_current')}) / max by ({DP}) "
        f"({m('ovs_vswitchd_upcall_flows_limit')})",
        "datapath flows as a share of the flow limit",
    ),
    "ovs:poll_threads_busy:ratio_rate5m": (
        f"{_rate('ovs_vswitchd_poll_threads_busy_cycles_total', DP + ', thread')} / "
        f"({_rate('ovs_vswitchd_poll_threads_busy_cycles_total', DP + ', thread')} + "
        f"{_rate('ovs_vswitchd_poll_threads_idle_cycles_total', DP + ', thread')})",
        "PMD thread busy cycles as a share of all its cycles",
    ),
    # A NIC may report rx drops and no tx drops (or neither: the dummy netdev has none).
    "ovs:interface_drops:rate5m": (_rate_either("dropped"), "packets dropped per second (rx + tx)"),
    "ovs:interface_errors:rate5m": (_rate_either("errors"), "packet errors per second (rx + tx)"),
}

Series = list[tuple[str, str]]  # (series selector, promtool values notation), sampled every minute


def _series(name: str, values: str, **labels: str) -> tuple[str, str]:
    pairs = {"instance": "hv1", "job": JOB, **labels}
    return f"{name}{{{','.join(f'{k}={v!r}' for k, v in pairs.items())}}}".replace("'", '"'), values


DP_LABELS = {"datapath": "system@ovs-system"}
PMD_LABELS = {"datapath": "netdev@ovs-netdev", "thread": "pmd-c0", "numa": "0", "core": "0"}
IF_LABELS = {"bridge": "br-int", "interface": "tap0"}
TUNNEL_LABELS = {
    "bridge": "br-int",
    "tunnel": "ovn-hv2-0",
    "type": "geneve",
    "remote_ip": "192.0.2.2",
    "key": "flow",
    "chassis": "hv2",
}


@dataclass(frozen=True)
class Alert:
    """An alerting rule, with the series that make it fire and healthy ones that keep it silent."""

    name: str
    signal: str  # the measured quantity; the live Prometheus test checks it returns data
    condition: str  # appended to ``signal`` to make the alert expression
    wait: str
    severity: str
    summary: str
    runbook: str
    metric: str  # the spec whose help text becomes the description
    labels: tuple[str, ...]  # the labels a firing alert carries (besides severity)
    fire: Series
    healthy: Series
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def expr(self) -> str:
        return f"{self.signal} {self.condition}"


def _alerts() -> list[Alert]:
    inst_dp = ("instance", "datapath")
    return [
        Alert(
            "OvsUpcallRateHigh",
            "ovs:datapath_upcalls:rate5m",
            "> 10000",
            "10m",
            "warning",
            "{{ $labels.instance }}: more than 10k upcalls/s on {{ $labels.datapath }}",
            "Many new flows reach ovs-vswitchd: look at ovstop's flow lookup pane and `ovs-appctl upcall/show` "
            "(flow churn, a scan, revalidator evictions); check megaflow wildcarding and the flow limit.",
            MISSED,
            inst_dp,
            [_series(MISSED, "0+1200000x30", **DP_LABELS)],
            [_series(MISSED, "0+6000x30", **DP_LABELS)],
        ),
        Alert(
            "OvsUpcallFailures",
            "ovs:upcall_failures:rate5m",
            "> 0",
            "5m",
            "warning",
            "{{ $labels.instance }}: packets dropped because their upcall failed",
            f"`ovs-appctl coverage/show | grep {UPCALL_DROP}` and ovs-vswitchd.log for upcall errors "
            "(handler threads, netlink buffer, translation errors).",
            COVERAGE,
            ("instance",),
            [_series(COVERAGE, "0+60x30", counter=UPCALL_DROP), _series(SOURCE_UP, "1x30", source="unixctl")],
            [_series(SOURCE_UP, "1x30", source="unixctl")],
        ),
        Alert(
            "OvsUpcallsLost",
            "ovs:datapath_lost:rate5m",
            "> 0",
            "5m",
            "critical",
            "{{ $labels.instance }}: upcalls lost on {{ $labels.datapath }}",
            "The upcall queue overflows and packets are dropped: raise n-handler-threads, find the flow churn "
            "source (ovstop upcall events), check ovs-vswitchd CPU.",
            LOST,
            inst_dp,
            [_series(LOST, "0+60x30", **DP_LABELS)],
            [_series(LOST, "0x30", **DP_LABELS)],
        ),
        Alert(
            "OvsDatapathHitRatioLow",
            "ovs:datapath_hit_ratio:rate5m",
            "< 0.8 and ovs:datapath_upcalls:rate5m > 100",
            "15m",
            "warning",
            "{{ $labels.instance }}: datapath cache hits under 80% on {{ $labels.datapath }}",
            "Most packets miss the datapath flow cache: look for short-lived flows, flows evicted by the flow "
            "limit or revalidation, and over-specific megaflows (ovstop flow lookup pane, dpctl/dump-flows).",
            HIT,
            inst_dp,
            [_series(HIT, "0+6000x30", **DP_LABELS), _series(MISSED, "0+60000x30", **DP_LABELS)],
            [_series(HIT, "0+600000x30", **DP_LABELS), _series(MISSED, "0+6000x30", **DP_LABELS)],
        ),
        Alert(
            "OvsFlowLimitNear",
            "ovs:upcall_flows_limit:ratio",
            "> 0.9",
            "10m",
            "warning",
            "{{ $labels.instance }}: datapath flows above 90% of the flow limit on {{ $labels.datapath }}",
            "ovs-vswitchd will evict flows and upcalls will rise: check `ovs-appctl upcall/show`, "
            "other_config:flow-limit, and slow revalidator dumps (they lower the limit).",
            "ovs_vswitchd_upcall_flows_limit",
            inst_dp,
            [
                _series("ovs_vswitchd_upcall_flows_current", "9500x30", **DP_LABELS),
                _series("ovs_vswitchd_upcall_flows_limit", "10000x30", **DP_LABELS),
            ],
            [
                _series("ovs_vswitchd_upcall_flows_current", "1000x30", **DP_LABELS),
                _series("ovs_vswitchd_upcall_flows_limit", "10000x30", **DP_LABELS),
            ],
        ),
        Alert(
            "OvsRevalidatorDumpSlow",
            f"max by ({DP}) ({m('ovs_vswitchd_upcall_dump_duration_seconds')})",
            "> 2",
            "5m",
            "warning",
            "{{ $labels.instance }}: revalidator dumps take over 2 s on {{ $labels.datapath }}",
            "Above 2 s OVS lowers the flow limit: too many flows or too little revalidator CPU "
            "(n-revalidator-threads, ovs-vswitchd CPU, `ovs-appctl upcall/show`).",
            "ovs_vswitchd_upcall_dump_duration_seconds",
            inst_dp,
            [_series("ovs_vswitchd_upcall_dump_duration_seconds", "3x30", **DP_LABELS)],
            [_series("ovs_vswitchd_upcall_dump_duration_seconds", "0.05x30", **DP_LABELS)],
        ),
        Alert(
            "OvsPmdBusy",
            "ovs:poll_threads_busy:ratio_rate5m",
            "> 0.95",
            "15m",
            "warning",
            "{{ $labels.instance }}: PMD thread {{ $labels.thread }} busy over 95%",
            "The PMD is saturated: `ovs-appctl dpif-netdev/pmd-rxq-show` for rx queue balance, add PMD cores "
            "(pmd-cpu-mask) or enable pmd-auto-lb.",
            "ovs_vswitchd_poll_threads_busy_cycles_total",
            ("instance", "datapath", "thread"),
            [
                _series("ovs_vswitchd_poll_threads_busy_cycles_total", "0+99x30", **PMD_LABELS),
                _series("ovs_vswitchd_poll_threads_idle_cycles_total", "0+1x30", **PMD_LABELS),
            ],
            [
                _series("ovs_vswitchd_poll_threads_busy_cycles_total", "0+10x30", **PMD_LABELS),
                _series("ovs_vswitchd_poll_threads_idle_cycles_total", "0+90x30", **PMD_LABELS),
            ],
        ),
        Alert(
            "OvsInterfaceDrops",
            "ovs:interface_drops:rate5m",
            "> 1",
            "10m",
            "warning",
            "{{ $labels.instance }}: {{ $labels.interface }} on {{ $labels.bridge }} drops packets",
            "`ovs-vsctl get interface <name> statistics`; rx drops: queue full or PMD too slow, tx drops: peer "
            "not reading (VM, vhost queue); compare with ovstop's interface table.",
            "ovs_vswitchd_interface_rx_dropped_total",
            ("instance", "bridge", "interface"),
            [
                _series("ovs_vswitchd_interface_rx_dropped_total", "0+600x30", **IF_LABELS),
                _series("ovs_vswitchd_interface_tx_dropped_total", "0x30", **IF_LABELS),
            ],
            [
                _series("ovs_vswitchd_interface_rx_dropped_total", "0x30", **IF_LABELS),
                _series("ovs_vswitchd_interface_tx_dropped_total", "0x30", **IF_LABELS),
            ],
        ),
        Alert(
            "OvsInterfaceErrors",
            "ovs:interface_errors:rate5m",
            "> 0",
            "10m",
            "warning",
            "{{ $labels.instance }}: {{ $labels.interface }} on {{ $labels.bridge }} has packet errors",
            "Check the link (cabling, MTU mismatch, CRC errors in ovstop's interface counters) and the NIC's "
            "`ethtool -S`.",
            "ovs_vswitchd_interface_rx_errors_total",
            ("instance", "bridge", "interface"),
            [
                _series("ovs_vswitchd_interface_rx_errors_total", "0+60x30", **IF_LABELS),
                _series("ovs_vswitchd_interface_tx_errors_total", "0x30", **IF_LABELS),
            ],
            [
                _series("ovs_vswitchd_interface_rx_errors_total", "0x30", **IF_LABELS),
                _series("ovs_vswitchd_interface_tx_errors_total", "0x30", **IF_LABELS),
            ],
        ),
        Alert(
            "OvsTunnelDown",
            f"max by (instance, bridge, tunnel, remote_ip, chassis) ({m('ovs_vswitchd_tunnel_up')})",
            "== 0",
            "2m",
            "critical",
            "{{ $labels.instance }}: tunnel {{ $labels.tunnel }} to {{ $labels.remote_ip }} is down",
            "BFD (or CFM, or carrier) says the tunnel is down: check underlay reachability to remote_ip, "
            "`ovs-appctl bfd/show`, and the remote chassis's ovn-controller.",
            "ovs_vswitchd_tunnel_up",
            ("instance", "bridge", "tunnel", "remote_ip", "chassis"),
            [_series("ovs_vswitchd_tunnel_up", "0x30", **TUNNEL_LABELS)],
            [_series("ovs_vswitchd_tunnel_up", "1x30", **TUNNEL_LABELS)],
        ),
        Alert(
            "OvnChassisDown",
            f"max by (instance, chassis) ({m('ovn_chassis_up')})",
            "== 0",
            "2m",
            "critical",
            "{{ $labels.instance }} sees OVN chassis {{ $labels.chassis }} down",
            "The chassis is gone from the southbound DB, its ovn-controller has not registered, or it stopped "
            "applying config: check ovn-controller on that host and `ovn-sbctl show`.",
            "ovn_chassis_up",
            ("instance", "chassis"),
            [_series("ovn_chassis_up", "0x30", chassis="hv2")],
            [_series("ovn_chassis_up", "1x30", chassis="hv2")],
        ),
        Alert(
            "OvnChassisLagging",
            f"max by (instance, chassis) ({m('ovn_chassis_nb_cfg_lag')})",
            "> 0",
            "5m",
            "warning",
            "OVN chassis {{ $labels.chassis }} has not applied the latest config for 5 minutes",
            "ovn-controller on that chassis is slow or stuck: its CPU and log, `ovn-appctl -t ovn-controller "
            "connection-status`, the southbound DB's load.",
            "ovn_chassis_nb_cfg_lag",
            ("instance", "chassis"),
            [_series("ovn_chassis_nb_cfg_lag", "3x30", chassis="hv2")],
            [_series("ovn_chassis_nb_cfg_lag", "0x30", chassis="hv2")],
        ),
        Alert(
            "OvnControllerDisconnected",
            f"max by (instance, chassis) ({m('ovn_controller_sb_connected')})",
            "== 0",
            "2m",
            "critical",
            "{{ $labels.instance }}: ovn-controller is not connected to the southbound DB",
            "`ovn-appctl -t ovn-controller connection-status`; check external_ids:ovn-remote, the SB DB "
            "servers and TLS certificates.",
            "ovn_controller_sb_connected",
            ("instance", "chassis"),
            [_series("ovn_controller_sb_connected", "0x30", chassis="hv1")],
            [_series("ovn_controller_sb_connected", "1x30", chassis="hv1")],
        ),
        Alert(
            "OvstopSourceDown",
            f"max by (instance, source) ({m(SOURCE_UP)})",
            "== 0",
            "2m",
            "warning",
            "{{ $labels.instance }}: ovstop cannot read {{ $labels.source }}",
            "The series of that source are missing (a gap, not stale values): is ovs-vswitchd (or OVSDB, OVN) "
            "running, and can ovstop reach its socket? `ovstop snapshot` shows the reason under health.",
            SOURCE_UP,
            ("instance", "source"),
            [_series(SOURCE_UP, "0x30", source="ovsdb")],
            [_series(SOURCE_UP, "1x30", source="ovsdb")],
        ),
        Alert(
            "OvstopExporterDown",
            f'up{{job="{JOB}"}}',
            "== 0",
            "2m",
            "critical",
            "ovstop on {{ $labels.instance }} does not answer scrapes",
            "`systemctl status ovstop-exporter` on that host; check TLS/auth in --web.config.file match the "
            "scrape config.",
            SOURCE_UP,
            ("instance", "job"),
            [('up{instance="hv1",job="ovstop"}', "0x30")],
            [('up{instance="hv1",job="ovstop"}', "1x30")],
        ),
    ]


ALERTS = _alerts()


def rules() -> dict[str, Any]:
    """The rules file: recording rules first (the alerts build on them), then the alerts."""
    return {
        "groups": [
            {
                "name": "ovstop.recording",
                "rules": [{"record": name, "expr": expr} for name, (expr, _) in RECORDING.items()],
            },
            {
                "name": "ovstop.alerts",
                "rules": [
                    {
                        "alert": a.name,
                        "expr": a.expr,
                        "for": a.wait,
                        "labels": {"severity": a.severity},
                        "annotations": {"summary": a.summary, "description": helptext(a.metric), "runbook": a.runbook},
                    }
                    for a in ALERTS
                ],
            },
        ]
    }


def _labels_of(selector: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', selector.partition("{")[2]))


def _render(template: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda match: labels[match.group(1)], template)


def rule_tests() -> dict[str, Any]:
    """``promtool test rules`` cases: each alert fires on its made-up series and stays silent on healthy ones."""
    tests = []
    for a in ALERTS:
        labels = {k: v for k, v in _labels_of(a.fire[0][0]).items() if k in a.labels}
        expected = {
            "exp_labels": {**labels, "severity": a.severity},
            "exp_annotations": {
                "summary": _render(a.summary, labels),
                "description": helptext(a.metric),
                "runbook": a.runbook,
            },
        }
        for series, alerts in ((a.fire, [expected]), (a.healthy, [])):
            tests.append(
                {
                    "interval": "1m",
                    "input_series": [{"series": s, "values": v} for s, v in series],
                    "alert_rule_test": [{"eval_time": "25m", "alertname": a.name, "exp_alerts": alerts}],
                }
            )
    return {"rule_files": [Path(RULES_FILE).name], "evaluation_interval": "1m", "tests": tests}


# --- dashboard ---------------------------------------------------------------------------------------

SEL = '{instance=~"$instance"}'


@dataclass
class _Layout:
    panels: list[dict[str, Any]] = field(default_factory=list)
    x: int = 0
    y: int = 0
    row_height: int = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1},
                "id": len(self.panels) + 1,
            }
        )
        self.y += 1

    def _newline(self) -> None:
        if self.x:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0

    def add(self, panel: dict[str, Any], w: int, h: int = 8) -> None:
        if self.x + w > 24:
            self._newline()
        panel.update(
            id=len(self.panels) + 1,
            gridPos={"x": self.x, "y": self.y, "w": w, "h": h},
            datasource={"type": "prometheus", "uid": "${datasource}"},
        )
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)


def _target(expr: str, legend: str = "", fmt: str = "time_series") -> dict[str, Any]:
    return {
        "expr": expr,
        "legendFormat": legend or "__auto",
        "format": fmt,
        "refId": "A",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
    }


def _timeseries(title: str, description: str, targets: list[dict[str, Any]], unit: str = "short") -> dict[str, Any]:
    for i, target in enumerate(targets):
        target["refId"] = chr(ord("A") + i)
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
    }


def _stat(title: str, expr: str, unit: str, description: str) -> dict[str, Any]:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "targets": [_target(expr)],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"},
    }


def _heatmap(spec: MetricSpec) -> dict[str, Any]:
    expr = f"sum by (le) (increase({spec.name}_bucket{SEL}[$__rate_interval]))"
    return {
        "type": "heatmap",
        "title": spec.name.removeprefix("ovs_vswitchd_"),
        "description": spec.help,
        "targets": [_target(expr, "{{le}}", "heatmap")],
        "options": {
            "calculate": False,
            "yAxis": {"unit": spec.unit or "short"},
            "cellGap": 1,
            "color": {"mode": "scheme", "scheme": "Oranges"},
        },
    }


def _rate_by(name: str, by: str, unit: str = "pps") -> dict[str, Any]:
    return _timeseries(
        name.removeprefix("ovs_vswitchd_").removesuffix("_total").replace("_", " ") + "/s",
        helptext(name),
        [_target(f"sum by ({by}) (rate({m(name)}{SEL}[$__rate_interval]))", "{{" + by.split(", ")[-1] + "}}")],
        unit,
    )


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard: headline rates, the histograms as heatmaps, interfaces, tunnels, PMDs, OVN."""
    lay = _Layout()
    lay.row("Headline")
    lay.add(
        _stat(
            "Packets/s",
            f"sum(rate({m(HIT)}{SEL}[$__rate_interval])) + sum(rate({m(MISSED)}{SEL}[$__rate_interval]))",
            "pps",
            "Datapath lookups (hits + misses).",
        ),
        4,
        4,
    )
    lay.add(
        _stat(
            "Upcalls/s", f"sum(ovs:datapath_upcalls:rate5m{SEL})", "pps", RECORDING["ovs:datapath_upcalls:rate5m"][1]
        ),
        4,
        4,
    )
    lay.add(_stat("Lost upcalls/s", f"sum(ovs:datapath_lost:rate5m{SEL})", "pps", helptext(LOST)), 4, 4)
    lay.add(
        _stat(
            "Hit ratio",
            f"min(ovs:datapath_hit_ratio:rate5m{SEL})",
            "percentunit",
            RECORDING["ovs:datapath_hit_ratio:rate5m"][1],
        ),
        4,
        4,
    )
    lay.add(
        _stat(
            "Flows / limit",
            f"max(ovs:upcall_flows_limit:ratio{SEL})",
            "percentunit",
            RECORDING["ovs:upcall_flows_limit:ratio"][1],
        ),
        4,
        4,
    )
    lay.add(
        _stat(
            "Revalidator dump",
            f"max({m('ovs_vswitchd_upcall_dump_duration_seconds')}{SEL})",
            "s",
            helptext("ovs_vswitchd_upcall_dump_duration_seconds"),
        ),
        4,
        4,
    )
    lay.add(
        _timeseries(
            "Datapath lookups/s",
            "Hits, misses (upcalls) and lost upcalls per datapath.",
            [
                _target(f"sum by (datapath) (rate({m(n)}{SEL}[$__rate_interval]))", "{{datapath}} " + label)
                for n, label in ((HIT, "hit"), (MISSED, "missed"), (LOST, "lost"))
            ],
            "pps",
        ),
        12,
    )
    lay.add(
        _timeseries(
            "Datapath flows",
            helptext("ovs_vswitchd_upcall_flows_current"),
            [
                _target(f"max by (datapath) ({m(n)}{SEL})", "{{datapath}} " + n.rsplit("_", 1)[1])
                for n in ("ovs_vswitchd_upcall_flows_current", "ovs_vswitchd_upcall_flows_limit")
            ],
        ),
        12,
    )
    lay.add(
        _timeseries(
            "Upcall failures/s",
            RECORDING["ovs:upcall_failures:rate5m"][1],
            [_target(f"ovs:upcall_failures:rate5m{SEL}", "{{instance}}")],
            "pps",
        ),
        12,
    )
    lay.add(
        _timeseries(
            "ovstop sources up", helptext(SOURCE_UP), [_target(f"max by (source) ({m(SOURCE_UP)}{SEL})", "{{source}}")]
        ),
        12,
    )
    lay.row("Histograms")
    for spec in catalog().values():
        if spec.kind is Kind.HISTOGRAM:
            lay.add(_heatmap(spec), 8)
    lay.row("Interfaces")
    lay.add(_rate_by("ovs_vswitchd_interface_rx_packets_total", "bridge, interface"), 12)
    lay.add(_rate_by("ovs_vswitchd_interface_tx_packets_total", "bridge, interface"), 12)
    lay.add(
        _timeseries(
            "Interface drops/s",
            RECORDING["ovs:interface_drops:rate5m"][1],
            [_target(f"ovs:interface_drops:rate5m{SEL}", "{{interface}}")],
            "pps",
        ),
        12,
    )
    lay.add(
        _timeseries(
            "Interface errors/s",
            RECORDING["ovs:interface_errors:rate5m"][1],
            [_target(f"ovs:interface_errors:rate5m{SEL}", "{{interface}}")],
            "pps",
        ),
        12,
    )
    lay.row("Tunnels")
    lay.add(_rate_by("ovs_vswitchd_tunnel_rx_bytes_total", "tunnel, remote_ip", "Bps"), 8)
    lay.add(_rate_by("ovs_vswitchd_tunnel_tx_bytes_total", "tunnel, remote_ip", "Bps"), 8)
    lay.add(
        _timeseries(
            "Tunnel up",
            helptext("ovs_vswitchd_tunnel_up"),
            [_target(f"max by (tunnel, remote_ip) ({m('ovs_vswitchd_tunnel_up')}{SEL})", "{{tunnel}} {{remote_ip}}")],
        ),
        8,
    )
    lay.add(
        _timeseries(
            "Tunnel drops/s",
            "Packets dropped per second on each tunnel (rx + tx).",
            [
                _target(
                    _rate_either("dropped", "tunnel", "tunnel, remote_ip", "$__rate_interval", SEL),
                    "{{tunnel}} {{remote_ip}}",
                )
            ],
            "pps",
        ),
        12,
    )
    lay.add(
        _timeseries(
            "Tunnel errors/s",
            "Packet errors per second on each tunnel (rx + tx).",
            [
                _target(
                    _rate_either("errors", "tunnel", "tunnel, remote_ip", "$__rate_interval", SEL),
                    "{{tunnel}} {{remote_ip}}",
                )
            ],
            "pps",
        ),
        12,
    )
    lay.row("PMD threads")
    lay.add(
        _timeseries(
            "PMD busy",
            RECORDING["ovs:poll_threads_busy:ratio_rate5m"][1],
            [_target(f"ovs:poll_threads_busy:ratio_rate5m{SEL}", "{{thread}}")],
            "percentunit",
        ),
        12,
    )
    lay.add(_rate_by("ovs_vswitchd_poll_threads_packets_total", "thread"), 12)
    lay.row("OVN")
    lay.add(
        _timeseries(
            "Chassis up",
            helptext("ovn_chassis_up"),
            [_target(f"max by (chassis) ({m('ovn_chassis_up')}{SEL})", "{{chassis}}")],
        ),
        8,
    )
    lay.add(
        _timeseries(
            "Chassis nb_cfg lag",
            helptext("ovn_chassis_nb_cfg_lag"),
            [_target(f"max by (chassis) ({m('ovn_chassis_nb_cfg_lag')}{SEL})", "{{chassis}}")],
        ),
        8,
    )
    lay.add(
        _timeseries(
            "ovn-controller SB connection",
            helptext("ovn_controller_sb_connected"),
            [_target(f"max by (chassis) ({m('ovn_controller_sb_connected')}{SEL})", "{{chassis}}")],
        ),
        8,
    )
    variables = [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"},
        {
            "name": "instance",
            "label": "Hypervisor",
            "type": "query",
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "query": {"query": f'label_values({SOURCE_UP}{{job="{JOB}"}}, instance)', "refId": "instance"},
            "definition": f'label_values({SOURCE_UP}{{job="{JOB}"}}, instance)',
            "refresh": 2,
            "multi": True,
            "includeAll": True,
            "current": {},
        },
    ]
    return {
        "title": "Open vSwitch (ovstop)",
        "uid": "ovstop-ovs",
        "tags": ["openvswitch", "ovn", "ovstop"],
        "description": "Generated by `python -m ovstop.export.mixin` from ovstop's metric specs.",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "timezone": "browser",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": variables},
        "panels": lay.panels,
    }


def dashboard_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target, with Grafana's variables replaced for a direct query."""
    out = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace('instance=~"$instance"', 'instance=~".+"').replace("$__rate_interval", "1m")
            out.append((panel["title"], expr))
    return out


# --- files -------------------------------------------------------------------------------------------

HEADER = "# Generated by `python -m ovstop.export.mixin` from ovstop's metric specs: do not edit.\n"


def rendered() -> dict[str, str]:
    """Path under ``contrib/`` -> file content."""
    import yaml

    def dump(doc: dict[str, Any]) -> str:
        return HEADER + yaml.safe_dump(doc, sort_keys=False, width=1000, allow_unicode=True)

    return {
        RULES_FILE: dump(rules()),
        RULES_TEST_FILE: dump(rule_tests()),
        DASHBOARD_FILE: json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ovstop.export.mixin", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[2] / "contrib"), help="contrib dir")
    parser.add_argument("--check", action="store_true", help="exit 1 when the files on disk differ")
    args = parser.parse_args(argv)
    stale = []
    for rel, text in rendered().items():
        path = Path(args.out) / rel
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(rel)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}", file=sys.stderr)
    if stale:
        print(f"mixin: out of date, run python -m ovstop.export.mixin: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
