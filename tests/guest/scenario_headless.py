"""In-guest scenario: ``ovstop --headless --record`` against the kernel-datapath switch (run as root in the guest).

On the switch of tests/guest/kernel_switch.py it starts ovstop as a subprocess, waits until eBPF capture is
up (``ovstop_source_up{source="ebpf"} 1`` on /metrics and ovstop's kprobes registered), then after
``revalidator/purge`` sends N new UDP 5-tuples from ns1, each again REPEATS times, then one packet through
the ct/NAT rule. Nothing else moves on the switch (no replies, no ARP, no IPv6), so /metrics, scraped
over HTTP and parsed with prometheus_client's parser, must show exactly:
  * N more samples in ``ovs_vswitchd_upcall_latency_seconds`` for port="all" and for ns1's port,
  * N more flow-lookup misses and N x REPEATS more hits, and ``ovstop_ebpf_events_total`` > 0.
SIGTERM must end ovstop with 143 and no traceback, and its kprobes must be gone.

The recording is then checked on its own (upcall/return keys, enqueue queue_ids re-executed to v2, lookup
hits per ufid equal to ``dpctl/dump-flows`` packets, ct zone and NAT range) and those facts are written as
a JSON summary next to it in .guest/out/ (also printed on a ``HEADLESS-SUMMARY`` line): the host test
tests/test_guest_replay.py replays the recording through ovstop's correlator and compares with it.
``--save-fixture [NAME]`` also copies both to tests/data/recordings/NAME.{jsonl,summary.json} (default
guest-ebpf; the Debian 13 guest's is guest-ebpf-trixie), keeping only
the snapshot lines of the traffic window when the file would be too large.

Prints "HEADLESS-OK <check>" per check and "HEADLESS-PASS" at the end; exits 1 on the first failure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from kernel_switch import NAT_PORT, dp_ports, flow_packets, kernel_switch, purge, send_udp
from prometheus_client.parser import text_string_to_metric_families
from scenario_lib import ScenarioFailure, checks, run

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / ".guest" / "out"
RECORDINGS = REPO / "tests" / "data" / "recordings"
FIXTURE_MAX_BYTES = 300_000
LISTEN = "127.0.0.1:6103"
N_TUPLES = 8
REPEATS = 3
READY_TIMEOUT = 400.0
KPROBE_LIST = Path("/sys/kernel/debug/kprobes/list")
KPROBE_EVENTS = Path("/sys/kernel/tracing/kprobe_events")
# ovstop's kprobes/kretprobes on this kernel (the upcall itself is a raw tracepoint): (type, symbol).
KPROBES = {
    ("r", "ovs_dp_upcall"),
    ("k", "queue_userspace_packet"),
    ("r", "queue_userspace_packet"),
    ("k", "ovs_flow_tbl_lookup_stats"),
    ("r", "ovs_flow_tbl_lookup_stats"),
}
LATENCY = "ovs_vswitchd_upcall_latency_seconds_count"

Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]

ok, expect = checks("HEADLESS")


def scrape() -> Scrape:
    """Every sample of /metrics, parsed by prometheus_client (which refuses malformed exposition)."""
    with urllib.request.urlopen(f"http://{LISTEN}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: Scrape, name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def expected_kprobes() -> set[tuple[str, str]]:
    """KPROBES, less the flow_lookup pair where bcc can attach fexit to module functions (0.28+)."""
    import bcc  # the guest's Debian python3-bpfcc

    version = tuple(int(x) for x in bcc.__version__.split(".")[:2])
    lookup = {("k", "ovs_flow_tbl_lookup_stats"), ("r", "ovs_flow_tbl_lookup_stats")}
    return KPROBES - lookup if version >= (0, 28) else KPROBES


def our_kprobes() -> set[tuple[str, str]]:
    """Registered kprobes on the openvswitch symbols ovstop attaches to (from debugfs)."""
    found = set()
    for line in KPROBE_LIST.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3:
            pair = (parts[1], parts[2].partition("+")[0])
            if pair in KPROBES:
                found.add(pair)
    return found


def wait_ready(proc: subprocess.Popen[bytes], log: Path) -> float:
    """Seconds until capture is up; fails when ovstop exits or READY_TIMEOUT passes."""
    start = time.monotonic()
    while time.monotonic() - start < READY_TIMEOUT:
        expect(proc.poll() is None, f"ovstop exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            up = value(scrape(), "ovstop_source_up", source="ebpf") == 1.0
        except OSError:
            up = False
        if up and our_kprobes() == expected_kprobes():
            return time.monotonic() - start
        time.sleep(2)
    raise ScenarioFailure(f"capture not up after {READY_TIMEOUT:g} s: {log.read_text()[-2000:]}")


def check_metrics(before: Scrape, after: Scrape, in_port: int) -> dict[str, float]:
    """The /metrics deltas of the N new 5-tuples and their repeats."""

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    got = {
        "latency_count_all": delta(LATENCY, port="all"),
        "latency_count_in_port": delta(LATENCY, port=str(in_port)),
        "lookup_miss": delta("ovs_vswitchd_flow_lookup_miss_total"),
        "lookup_hit": delta("ovs_vswitchd_flow_lookup_hit_total"),
        "events_total": value(after, "ovstop_ebpf_events_total"),
        "events_lost": value(after, "ovstop_ebpf_events_lost_total"),
    }
    expect(got["latency_count_all"] == N_TUPLES, f"latency histogram count (all) moved by {got}")
    expect(got["latency_count_in_port"] == N_TUPLES, f"latency histogram count (port {in_port}): {got}")
    expect(got["lookup_miss"] == N_TUPLES, f"lookup misses: {got}")
    expect(got["lookup_hit"] == N_TUPLES * REPEATS, f"lookup hits: {got}")
    expect(got["events_total"] > 0 and got["events_lost"] == 0, f"eBPF events: {got}")
    return got


def recorded_events(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    expect(bool(lines) and "startup" in lines[0], "recording does not start with a startup event")
    return [obj for obj in lines if "ovs" in obj]


def summarize(events: list[dict[str, Any]], ports: dict[str, int], packets: dict[str, int]) -> dict[str, Any]:
    """Check the recording's links field by field (no correlator) and return them as the summary."""
    ovs = [(e["common"]["timestamp"], e["ovs"]) for e in events]
    counts: dict[str, int] = {}
    for _, o in ovs:
        counts[o["event_type"]] = counts.get(o["event_type"], 0) + 1
    upcalls = sorted(f"{ts}/{o['cpu']}" for ts, o in ovs if o["event_type"] == "upcall")
    returns = sorted(f"{o['upcall_ts']}/{o['upcall_cpu']}" for _, o in ovs if o["event_type"] == "upcall_return")
    expect(len(upcalls) == N_TUPLES + 1, f"{len(upcalls)} upcalls recorded, expected {N_TUPLES + 1}")
    expect(upcalls == returns, "recorded upcall_returns do not match the upcalls")
    queue_ids = {
        f"{o['upcall_ts']}/{o['upcall_cpu']}": o["queue_id"] for _, o in ovs if o["event_type"] == "upcall_enqueue"
    }
    expect(sorted(queue_ids) == upcalls, "an upcall has no upcall_enqueue")
    # Every enqueued packet is re-executed: each of its actions carries the enqueue's queue_id (the hash of the
    # packet head as userspace sent it back, taken at the first action, so a NAT rewrite does not change it).
    actions: dict[int, list[str]] = {}
    unlinked = 0
    for _, o in ovs:
        if o["event_type"] == "action_execute" and "queue_id" in o:
            if o["queue_id"] in queue_ids.values():
                actions.setdefault(o["queue_id"], []).append(f"{o['action']}:{o.get('port', '')}")
            else:
                unlinked += 1
    expect(set(actions) == set(queue_ids.values()), "enqueued packets were not all re-executed")
    expect(unlinked == 0, f"{unlinked} re-executed actions carry no enqueued queue_id")
    first = sorted(kinds[0] for kinds in actions.values())
    expect(first == ["ct:"] + [f"output:{ports['v2']}"] * N_TUPLES, f"re-executed actions {actions}")
    hits: dict[str, int] = {}
    for _, o in ovs:
        if o["event_type"] == "flow_lookup" and o.get("flow") and o.get("ufid"):
            a, b, c, d = o["ufid"]
            ufid = f"{a:08x}-{b >> 16:04x}-{b & 0xFFFF:04x}-{c >> 16:04x}-{c & 0xFFFF:04x}{d:08x}"
            hits[ufid] = hits.get(ufid, 0) + 1
    expect(hits == packets, f"recorded lookup hits per ufid {hits} != dump-flows packets {packets}")
    cts = [o for _, o in ovs if o["event_type"] == "action_execute" and o.get("action") == "ct"]
    expect(len(cts) == 1, f"{len(cts)} ct action events")
    ct = {k: cts[0].get(k) for k in ("zone_id", "flags", "nat", "queue_id")}
    expect(ct["zone_id"] == 5, f"ct {ct}")
    nat = {"dir": "dst", "min_addr": "10.0.0.2", "max_addr": "10.0.0.3", "min_port": 7000, "max_port": 7010}
    expect(ct["nat"] == nat, f"ct nat {ct['nat']}")
    return {
        "n_tuples": N_TUPLES,
        "repeats": REPEATS,
        "in_port": ports["v1"],
        "out_port": ports["v2"],
        "ovs_events": len(events),
        "event_counts": dict(sorted(counts.items())),
        "upcalls": upcalls,
        "queue_ids": queue_ids,
        "reexecuted": {str(q): kinds for q, kinds in sorted(actions.items())},
        "unlinked_actions": unlinked,
        "flow_packets": dict(sorted(packets.items())),
        "ct": ct,
    }


def save_fixture(recording: Path, summary: dict[str, Any], name: str) -> None:
    """Copy the recording and its summary to tests/data/recordings/<name>.{jsonl,summary.json}.

    Snapshot lines are frames (values that changed since the previous one), so they are all kept: a frame
    without its predecessors cannot be replayed, and together they are a few KB per second of run.
    """
    text = recording.read_text()
    expect(len(text) <= FIXTURE_MAX_BYTES, f"recording is {len(text)} bytes")
    fixture = RECORDINGS / f"{name}.jsonl"
    fixture.write_text(text)
    fixture.with_suffix(".summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    ok("fixture", f"{fixture.relative_to(REPO)} {len(text)} bytes")


def stop_ovstop(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise ScenarioFailure("ovstop did not exit within 30 s of SIGTERM") from None
    err = log.read_text()
    expect(rc == 128 + signal.SIGTERM and "Traceback" not in err, f"ovstop exited {rc}: {err[-2000:]}")
    left = our_kprobes()
    expect(not left, f"kprobes left after exit: {left}")
    if KPROBE_EVENTS.exists():
        expect("ovs" not in KPROBE_EVENTS.read_text(), f"kprobe_events: {KPROBE_EVENTS.read_text()}")
    ok("stop", f"exit {rc} on SIGTERM, no traceback, kprobes detached")


def scenario(save: str) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    recording = OUT_DIR / f"guest-{stamp}.jsonl"
    log = OUT_DIR / f"guest-{stamp}.ovstop.log"
    with kernel_switch(), log.open("wb") as log_file:
        ports = dp_ports()
        argv = [
            sys.executable,
            "-m",
            "ovstop",
            "--headless",
            "--listen",
            LISTEN,
            "--ebpf-deep",
            "--record",
            str(recording),
        ]
        proc = subprocess.Popen(argv, cwd=REPO, env=os.environ, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            ok("ready", f"capture up after {wait_ready(proc, log):.1f} s")
            purge()
            time.sleep(1)
            before = scrape()
            src_ports = list(range(20000, 20000 + N_TUPLES))
            send_udp(src_ports, 5000)
            send_udp(src_ports, 5000, REPEATS)
            time.sleep(2)
            packets = flow_packets()
            expect(packets == dict.fromkeys(packets, REPEATS) and len(packets) == N_TUPLES, f"dump-flows {packets}")
            got = check_metrics(before, scrape(), ports["v1"])
            ok("metrics", got)
            time.sleep(1)  # a snapshot between the two phases
            send_udp([21000], NAT_PORT)
            time.sleep(2)
            final = scrape()
            expect(value(final, LATENCY, port="all") - value(before, LATENCY, port="all") == N_TUPLES + 1,
                   "the NAT packet's upcall is not in the latency histogram")  # fmt: skip
        finally:
            if proc.poll() is None:
                stop_ovstop(proc, log)
    summary = summarize(recorded_events(recording), ports, packets)
    summary["metrics"] = got
    ok("recording", f"{recording.relative_to(REPO)}: {summary['event_counts']}")
    recording.with_suffix(".summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("HEADLESS-SUMMARY " + json.dumps(summary, separators=(",", ":")), flush=True)
    if save:
        save_fixture(recording, summary, save)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--save-fixture",
        nargs="?",
        const="guest-ebpf",
        default="",
        metavar="NAME",
        help="copy the recording to tests/data/recordings/NAME.jsonl (default guest-ebpf)",
    )
    args = parser.parse_args()
    return run("HEADLESS", lambda: scenario(args.save_fixture), also=(OSError,))


if __name__ == "__main__":
    sys.exit(main())
