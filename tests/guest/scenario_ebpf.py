"""In-guest eBPF scenario: real attach and capture on Debian's kernel (6.1 or 6.12) with the openvswitch module.

Run as root inside the QEMU guest (scripts/guest/run.sh -- python3 tests/guest/scenario_ebpf.py).
Kernel-datapath OVS in a private directory, bridge br0 with veth pairs into namespaces ns1/ns2, UDP
from ns1 to a static-ARP MAC that ns2 ignores (no replies, no ARP, IPv6 off: the only traffic is ours).
A ``learn`` action keyed on the 5-tuple makes every megaflow exact on it, so after
``revalidator/purge`` N new 5-tuples must give exactly:
  * N upcall events and N upcall_return events with the same (upcall_ts, upcall_cpu) pairs,
  * N upcall_enqueue events whose queue_ids are the ones of the re-executed packets' output actions,
  * an upcall latency histogram for ns1's datapath port holding N samples,
  * N flow-lookup misses on that port, and per-UFID lookup hits equal to dpctl/dump-flows packet counts,
    every hit event carrying one of those UFIDs and a non-zero sf_acts, outputs the flows' recirc_id;
then one packet through ct(commit,zone=5,nat(dst=10.0.0.2-10.0.0.3:7000-7010)) must show that zone and
range. Prints "EBPF-OK <check>" per check, "EBPF-PASS" at the end; exits 1 on the first failure.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kernel_switch import NAT_PORT, dp_ports, flow_packets, flow_recirc_ids, kernel_switch, purge, send_udp
from scenario_lib import capturing, checks, probed, run, stopped

from ovstop.collect.base import Sources, Tables
from ovstop.ebpf.capture import CaptureThread
from ovstop.ebpf.collector import EbpfCollector
from ovstop.ebpf.decode import ufid_str
from ovstop.events.schema import OvsEvent, encode

N_TUPLES = 8
REPEATS = 3

ok, expect = checks("EBPF")


def of_kind(events: list[dict[str, Any]], kind: str, since: int) -> list[dict[str, Any]]:
    return [e for e in events if e["ovs"]["event_type"] == kind and e["common"]["timestamp"] >= since]


def scenario(events: list[dict[str, Any]], capture: CaptureThread) -> None:
    ports = dp_ports()
    in_port, out_port = ports["v1"], ports["v2"]
    ok("datapath", f"v1={in_port} v2={out_port}")

    purge()
    time.sleep(1)
    before = capture.read_aggregates()
    t0 = time.monotonic_ns()
    src_ports = list(range(20000, 20000 + N_TUPLES))
    send_udp(src_ports, 5000)
    time.sleep(2)

    upcalls = of_kind(events, "upcall", t0)
    returns = of_kind(events, "upcall_return", t0)
    expect(len(upcalls) == N_TUPLES, f"{len(upcalls)} upcalls for {N_TUPLES} new 5-tuples")
    expect(len(returns) == N_TUPLES, f"{len(returns)} upcall_returns for {N_TUPLES} new 5-tuples")
    up_keys = {(e["common"]["timestamp"], e["ovs"]["cpu"]) for e in upcalls}
    ret_keys = {(e["ovs"]["upcall_ts"], e["ovs"]["upcall_cpu"]) for e in returns}
    expect(up_keys == ret_keys, "upcall_return events do not point at the upcalls (upcall_ts/upcall_cpu)")
    expect(all(e["ovs"]["cmd"] == 1 for e in upcalls), "upcalls are not MISS upcalls")
    expect(all(e["ovs"]["ret"] == 0 for e in returns), "an upcall failed")
    ok("upcalls", f"{len(upcalls)} upcalls, {len(returns)} returns, linked by upcall_ts/upcall_cpu")

    enqueues = of_kind(events, "upcall_enqueue", t0)
    expect(len(enqueues) == N_TUPLES, f"{len(enqueues)} upcall_enqueue events")
    queue_ids = {e["ovs"]["queue_id"] for e in enqueues}
    outputs = [e for e in of_kind(events, "action_execute", t0) if e["ovs"]["action"] == "output"]
    expect(outputs and all(e["ovs"]["port"] == out_port for e in outputs), "output actions not to v2's port")
    executed = {e["ovs"]["queue_id"] for e in outputs if "queue_id" in e["ovs"]}
    expect(executed == queue_ids, f"re-executed queue_ids {sorted(executed)} != enqueued {sorted(queue_ids)}")
    recirc = {e["ovs"]["recirc_id"] for e in outputs}
    expect(recirc == flow_recirc_ids(), f"output recirc_ids {recirc}, dump-flows says {flow_recirc_ids()}")
    ok("action_execute", f"output port {out_port}; {len(executed)} queue_ids match the enqueues; recirc {recirc}")

    t_hits = time.monotonic_ns()
    send_udp(src_ports, 5000, REPEATS)
    time.sleep(2)
    after = capture.read_aggregates()
    packets = flow_packets()
    expect(len(packets) == N_TUPLES, f"{len(packets)} datapath flows from v1, expected {N_TUPLES}: {packets}")
    for ufid, n in packets.items():
        hits = after.flow_hits.get(ufid, 0) - before.flow_hits.get(ufid, 0)
        expect(hits == n == REPEATS, f"flow {ufid}: {hits} lookup hits, dump-flows says {n} packets")
    misses = sum(n for (port, _), n in after.flow_misses.items() if port == in_port) - sum(
        n for (port, _), n in before.flow_misses.items() if port == in_port
    )
    expect(misses == N_TUPLES, f"{misses} lookup misses on port {in_port}")
    hit_events = [e["ovs"] for e in of_kind(events, "flow_lookup", t_hits) if e["ovs"]["flow"]]
    expect(len(hit_events) == N_TUPLES * REPEATS, f"{len(hit_events)} flow_lookup hit events")
    expect({ufid_str(e["ufid"]) for e in hit_events} == set(packets), "hit events carry other ufids than dump-flows")
    expect(all(e["sf_acts"] for e in hit_events), "a flow_lookup hit read sf_acts 0")
    ok(
        "flow_lookup",
        f"{len(packets)} ufids x {REPEATS} hits = dump-flows packets; {misses} misses; "
        f"{len(hit_events)} hit events with those ufids and non-zero sf_acts",
    )

    hist = after.latency.get(in_port)
    old = before.latency.get(in_port)
    delta = hist.minus(old) if hist and old else hist
    expect(delta is not None and delta.count == N_TUPLES, f"latency histogram for port {in_port}: {delta}")
    ok("latency", f"{delta.count} samples, p50 <= {delta.quantile(0.5)} s, mean {delta.mean()} s")

    t1 = time.monotonic_ns()
    send_udp([21000], NAT_PORT)
    time.sleep(2)
    cts = [e for e in of_kind(events, "action_execute", t1) if e["ovs"]["action"] == "ct"]
    expect(cts, "no ct action_execute event")
    ct = cts[0]["ovs"]
    expect(ct["zone_id"] == 5, f"ct zone {ct['zone_id']}")
    expect(
        ct.get("nat")
        == {"dir": "dst", "min_addr": "10.0.0.2", "max_addr": "10.0.0.3", "min_port": 7000, "max_port": 7010},
        f"ct nat {ct.get('nat')}",
    )
    ok("ct_nat", ct)

    tables = Tables()
    samples = list(EbpfCollector(capture).collect(Sources(), tables))
    names = {s.spec.name for s in samples}
    expect(
        "ovs_vswitchd_upcall_latency_seconds" in names and "ovs_vswitchd_flow_lookup_hit_total" in names,
        f"collector samples {sorted(names)}",
    )
    expect(len(tables.rows["flow_lookup_hits"]) >= N_TUPLES, "flow_lookup_hits table")
    ok(
        "collector",
        f"{len(samples)} samples, {len(tables.rows['flow_lookup_hits'])} ufid rows, "
        f"events={capture.events_seen} lost={capture.events_lost} sampled_out={capture.sampled_out}",
    )


def main() -> int:
    return run("EBPF", body)


def body() -> None:
    with kernel_switch():
        view, caps = probed()
        layout = caps["struct_layout"]
        expect(
            layout.available and layout.reason.endswith("BTF (/sys/kernel/btf/openvswitch)"),
            f"struct layout: {layout.reason}",
        )
        # (kernel_drops has its own scenario, scenario_drops.py: off on 6.1, which has no OVS drop reasons)
        optional = ("recv_upcall", "flow_operation", "kernel_drops")
        expect(all(c.available for c in caps.values() if c.name not in optional), "a kernel hook is off")
        events: list[dict[str, Any]] = []
        lock = threading.Lock()

        def on_event(event: OvsEvent) -> None:
            with lock:
                events.append(encode(event))  # the Retis form ovstop records, which the checks read

        started = time.monotonic()
        with capturing(CaptureThread(on_event, view=view, max_events_per_sec=0, deep=True), 600) as capture:
            ok(
                "attach",
                f"{len(capture.attached)} hooks in {time.monotonic() - started:.1f} s; missing: {capture.missing}",
            )
            lookup = sorted(h.kind.value for h in capture.attached if h.event == "flow_lookup")
            expect(
                lookup == (["kprobe", "kretprobe"] if view.fexit_error else ["fexit"]),
                f"flow_lookup attached as {lookup} while fexit is {view.fexit_error or 'available'}",
            )
            expect(
                ("(not fexit: " in caps["flow_lookup"].reason) == bool(view.fexit_error),
                f"--check flow_lookup: {caps['flow_lookup'].reason}",
            )
            ok("flow_lookup_probe", f"{'+'.join(lookup)} ({view.fexit_error or 'fexit available'})")
            scenario(events, capture)
            stopped(capture)
            ok("detach", "probes detached")


if __name__ == "__main__":
    sys.exit(main())
