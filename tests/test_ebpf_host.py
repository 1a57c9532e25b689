"""eBPF on the host: every program compiles with bcc and passes the kernel verifier (loaded, never
attached), raw records decode into Retis-envelope events, and capture fails cleanly where nothing
can attach. Real attach/capture runs in the QEMU guest (tests/guest/scenario_ebpf.py)."""

from __future__ import annotations

import ctypes
import math
import os
import platform
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ebpf_support import build_usdt_binary, headers_tree

from ovstop.collect.base import Sources, Tables
from ovstop.collect.sampler import Sampler
from ovstop.ebpf.bcc_import import import_bcc
from ovstop.ebpf.capability import find_kernel_headers, probe_system
from ovstop.ebpf.capture import LATENCY_BOUNDS, Aggregates, CaptureThread, _histogram
from ovstop.ebpf.collector import EbpfCollector
from ovstop.ebpf.decode import RawEvent, decode_batch, decode_record, ufid_str
from ovstop.ebpf.hooks import HOOKS, Kind
from ovstop.ebpf.layout import VERIFIED
from ovstop.ebpf.program import compile_program, program_text
from ovstop.errors import ParseError, SourceError
from ovstop.events.schema import encode

root = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")
KERNEL_GROUPS = ("upcall", "enqueue", "exec", "lookup")
LAYOUT = VERIFIED["6.1.0-57-amd64"]  # any complete set of offsets: the verifier checks the reads are bounded


@pytest.fixture(scope="module")
def bcc_ready(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """bcc, with kernel headers found or assembled from /usr/src (see tests/ebpf_support.py)."""
    bcc = import_bcc()
    with pytest.MonkeyPatch.context() as mp:
        if not find_kernel_headers(platform.release()):
            tree = headers_tree(tmp_path_factory.mktemp("kheaders"))
            if not tree:
                pytest.fail("no kernel headers: apt-get install linux-headers-amd64")
            mp.setenv("BCC_KERNEL_SOURCE", tree)
        yield bcc


def _load_all(bpf: object, bcc: object, hooks: list) -> dict[str, int]:
    fds = {}
    for hook in hooks:
        prog_type = bcc.BPF.RAW_TRACEPOINT if hook.kind is Kind.RAW_TRACEPOINT else bcc.BPF.KPROBE
        fds[hook.fn] = bpf.load_func(hook.fn.encode(), prog_type).fd
    return fds


@root
@pytest.mark.root
@pytest.mark.parametrize("ringbuf", [True, False], ids=["ringbuf", "perfbuf"])
def test_kernel_programs_pass_verifier(bcc_ready: object, ringbuf: bool) -> None:
    started = time.perf_counter()
    bpf = compile_program(KERNEL_GROUPS, ringbuf=ringbuf, defines=LAYOUT)
    elapsed = time.perf_counter() - started
    try:
        # fexit programs need the openvswitch module's BTF to load: the guest runs them
        kernel_hooks = [h for h in HOOKS if h.kind not in (Kind.USDT, Kind.FEXIT)]
        fds = _load_all(bpf, bcc_ready, kernel_hooks)
        assert set(fds) == {h.fn for h in kernel_hooks}
        assert all(fd > 0 for fd in fds.values())
        # the maps the capture thread and collector read exist with the expected shapes
        assert len(bpf[b"counters"]) == 2
        assert len(bpf[b"lookup_totals"]) == 4
    finally:
        bpf.cleanup()
    print(f"bcc compile ({'ringbuf' if ringbuf else 'perf'}): {elapsed:.2f} s")


@root
@pytest.mark.root
def test_usdt_programs_pass_verifier(bcc_ready: object, tmp_path: Path) -> None:
    binary = build_usdt_binary(tmp_path)
    if binary is None:
        pytest.fail("gcc and sys/sdt.h needed: apt-get install systemtap-sdt-dev")
    ctx = bcc_ready.USDT(path=str(binary))
    usdt_hooks = [h for h in HOOKS if h.kind is Kind.USDT]
    for hook in usdt_hooks:
        ctx.enable_probe(probe=hook.target, fn_name=hook.fn)
    bpf = compile_program(["usdt"], usdt_contexts=[ctx], defines=LAYOUT)  # bcc attaches USDT uprobes while building
    try:
        fds = _load_all(bpf, bcc_ready, usdt_hooks)
        assert all(fd > 0 for fd in fds.values())
        assert len(bpf.uprobe_fds) == len(usdt_hooks)
    finally:
        # bcc's cleanup() also deletes a tracefs uprobe_events entry, which fails where tracefs is not
        # mounted (this host); the uprobes came from perf_event_open, so closing their fds detaches them.
        for fd in bpf.uprobe_fds.values():
            bcc_ready.libbcc.lib.bpf_close_perf_event_fd(fd)
        bpf.uprobe_fds.clear()
        bpf.cleanup()


def test_program_text_inlines_common_header_once() -> None:
    text = program_text(["upcall", "lookup"])
    assert text.count("struct ovstop_event {") == 1
    assert "int upcall_tp(" in text and "int lookup_return(" in text
    assert "int exec_tp(" not in text
    with pytest.raises(SourceError, match="unknown BPF hook group"):
        program_text(["nope"])


# --- decoding: records are built with RawEvent, the ctypes mirror of struct ovstop_event that the
# verifier-loaded programs write (its size is pinned to 200 bytes on both sides, by a
# _Static_assert in bpf/ovs_common.h and below), so these bytes are what the ring buffer delivers.


def decode(data: bytes, usdt_path: str = "") -> dict[str, Any]:
    """A record as the Retis event ovstop records for it."""
    return encode(decode_record(data, usdt_path))


def _record(**fields: object) -> bytes:
    ev = RawEvent()
    for name, value in fields.items():
        if name in ("ufid", "nat_min_addr", "nat_max_addr"):
            getattr(ev, name)[:] = value
        else:
            setattr(ev, name, value)
    return bytes(ev)


def test_decode_upcall_and_return_share_ts_and_cpu() -> None:
    up = decode(_record(ts=61096236973661, type=1, probe=3, cpu=2, pid=7, tgid=7, comm=b"ping", port=4195744766, cmd=1))
    assert up == {
        "common": {"timestamp": 61096236973661, "smp_id": 2, "task": {"pid": 7, "tgid": 7, "comm": "ping"}},
        "kernel": {"symbol": "openvswitch:ovs_dp_upcall", "probe_type": "raw_tracepoint"},
        "ovs": {"event_type": "upcall", "cmd": 1, "port": 4195744766, "cpu": 2},
    }
    ret = decode(_record(ts=61096237000000, type=3, probe=2, cpu=2, upcall_ts=61096236973661, upcall_cpu=2))
    assert ret["kernel"] == {"symbol": "ovs_dp_upcall", "probe_type": "kretprobe"}
    assert ret["ovs"] == {"event_type": "upcall_return", "upcall_ts": 61096236973661, "upcall_cpu": 2, "ret": 0}


def test_decode_enqueue_has_queue_id() -> None:
    ev = decode(_record(type=2, probe=2, ret=-11, cmd=1, port=9, upcall_ts=5, upcall_cpu=1, queue_id=3316322986))
    assert ev["ovs"] == {
        "event_type": "upcall_enqueue",
        "ret": -11,
        "cmd": 1,
        "port": 9,
        "upcall_ts": 5,
        "upcall_cpu": 1,
        "queue_id": 3316322986,
    }


def test_decode_output_action_and_queue_id_only_when_known() -> None:
    ev = decode(_record(type=6, probe=3, action=1, action_arg=2, recirc_id=0, queue_id=1361394472, has_queue_id=1))
    assert ev["ovs"] == {
        "event_type": "action_execute",
        "action": "output",
        "port": 2,
        "recirc_id": 0,
        "queue_id": 1361394472,
    }
    ev = decode(_record(type=6, probe=3, action=7, action_arg=0x10, recirc_id=3, queue_id=99))
    assert ev["ovs"] == {"event_type": "action_execute", "action": "recirc", "id": 16, "recirc_id": 3}


def test_decode_ct_with_dnat_range() -> None:
    # As Retis's example: zone 20, flags 469 (commit|ip4|nat|nat_dst|map_ips|proto_specified),
    # 10.244.1.3-10.244.1.30, ports 36895-36900 (network order in the kernel's nf_nat_range2)
    ev = decode(
        _record(
            type=6,
            probe=3,
            action=12,
            recirc_id=34,
            ct_zone=20,
            ct_flags=469,
            nat_min_addr=list(socket.inet_aton("10.244.1.3")) + [0] * 12,
            nat_max_addr=list(socket.inet_aton("10.244.1.30")) + [0] * 12,
            nat_min_port=socket.htons(36895),
            nat_max_port=socket.htons(36900),
        )
    )
    assert ev["ovs"] == {
        "event_type": "action_execute",
        "action": "ct",
        "flags": 469,
        "zone_id": 20,
        "nat": {
            "dir": "dst",
            "min_addr": "10.244.1.3",
            "max_addr": "10.244.1.30",
            "min_port": 36895,
            "max_port": 36900,
        },
        "recirc_id": 34,
    }


def test_decode_flow_lookup_hit_and_miss() -> None:
    words = [0x12345678, 0xAAAABBBB, 0x55555555, 0xAAAAAAAA]
    hit = decode(_record(type=7, probe=2, flow=0xFFFF8881, sf_acts=0xFFFF8882, ufid=words, n_mask_hit=1))
    assert hit["kernel"]["symbol"] == "ovs_flow_tbl_lookup_stats"
    assert hit["ovs"] == {
        "event_type": "flow_lookup",
        "flow": 0xFFFF8881,
        "sf_acts": 0xFFFF8882,
        "ufid": words,
        "n_mask_hit": 1,
        "n_cache_hit": 0,
        "dpflow": "",  # Retis's reader requires both; a kernel-side capture has not resolved them
        "ofpflows": [],
    }
    assert ufid_str(words) == "12345678-aaaa-bbbb-5555-5555aaaaaaaa"
    miss = decode(_record(type=7, probe=2, n_mask_hit=3, n_cache_hit=2))
    assert miss["ovs"]["flow"] == 0 and miss["ovs"]["n_mask_hit"] == 3


def test_decode_usdt_events_use_userspace_section() -> None:
    ev = decode(
        _record(
            type=4,
            probe=4,
            pid=11,
            tgid=10,
            upcall_type=0,
            pkt_size=98,
            key_size=120,
            queue_id=1234,
            batch_ts=77,
            batch_idx=3,
        ),
        "/usr/sbin/ovs-vswitchd",
    )
    assert ev["userspace"] == {
        "probe_type": "usdt",
        "symbol": "dpif_recv:recv_upcall",
        "path": "/usr/sbin/ovs-vswitchd",
        "pid": 10,
        "tid": 11,
    }
    assert "kernel" not in ev
    assert ev["ovs"] == {
        "event_type": "recv_upcall",
        "type": 0,
        "pkt_size": 98,
        "key_size": 120,
        "queue_id": 1234,
        "batch_ts": 77,
        "batch_idx": 3,
    }
    put = decode(_record(type=5, probe=4, op_type=0, queue_id=1234, batch_ts=77, batch_idx=3))
    assert put["userspace"]["symbol"] == "dpif_netlink_operate__:op_flow_put"
    assert put["ovs"] == {
        "event_type": "flow_operation",
        "op_type": "put",
        "queue_id": 1234,
        "batch_ts": 77,
        "batch_idx": 3,
    }


def test_decode_rejects_garbage() -> None:
    assert ctypes.sizeof(RawEvent) == 200  # struct ovstop_event, _Static_assert in bpf/ovs_common.h
    with pytest.raises(ParseError, match="200"):
        decode(b"\0" * 10)
    with pytest.raises(ParseError, match="unknown type"):
        decode(_record(type=42, probe=1))
    events, errors = decode_batch([_record(type=1, probe=3, ts=5), b"\0" * 10, _record(type=42, probe=1)])
    assert [e.timestamp for e in events] == [5] and errors == 2


def test_latency_histogram_from_log2_slots() -> None:
    # slot i holds values below 2**i ns: 3 upcalls of 1-2 us (slot 11), one of 40 s (slot 36 -> +Inf)
    h = _histogram({11: 3, 36: 1}, 3 * 1500 + 40_000_000_000)
    assert h.bounds == LATENCY_BOUNDS and h.bounds[-1] == math.inf
    assert h.count == 4
    assert h.counts[11] == 3 and h.counts[-1] == 1
    assert h.quantile(0.5) == pytest.approx(2048e-9)
    assert h.total == pytest.approx(40.0000045)


@root
@pytest.mark.root
def test_capture_without_hooks_ends_with_one_line_error() -> None:
    view = probe_system()
    if view.module_loaded:
        pytest.skip("openvswitch module loaded here: covered by the guest scenario")
    events: list[dict] = []
    capture = CaptureThread(events.append, view=view)
    capture.start()
    assert capture.ready.wait(10)
    capture.join(10)
    assert not capture.is_alive()
    assert isinstance(capture.error, SourceError)
    assert "\n" not in str(capture.error)
    assert "openvswitch kernel module not loaded" in str(capture.error) or "headers" in str(capture.error)
    with pytest.raises(SourceError):
        capture.read_aggregates()
    with pytest.raises(SourceError):
        list(EbpfCollector(capture).collect(Sources(), Tables()))
    assert events == []


class _AttachedCapture(CaptureThread):
    """The capture thread with its in-kernel maps empty: the maps need the openvswitch module's hooks, which
    only the guest has; the path tested here (an event handed to a failing consumer) is ovstop's own."""

    def read_aggregates(self) -> Aggregates:
        return Aggregates(counters={"events_lost": 0, "sampled_out": 0})


def test_a_failing_event_consumer_degrades_ebpf_instead_of_dying_silently() -> None:
    full = open("/dev/full", "wb", buffering=0)  # noqa: SIM115 - closed below; every write is ENOSPC
    broken = [True]

    def record(event: dict) -> None:
        if broken[0]:
            full.write(b"{}\n")

    capture = _AttachedCapture(record)
    sampler = Sampler(Sources(), [EbpfCollector(capture)])
    raw = ctypes.create_string_buffer(_record(ts=1, type=1, probe=3, cpu=0, port=1, cmd=1))
    try:
        for _ in range(3):
            assert capture._on_raw(None, raw, len(raw)) == 0  # returns to bcc, does not raise into C
        capture._deliver_batch()  # what the capture thread does after each poll: decode and deliver
        health = sampler.sample().health["ebpf"]
        assert health.up and "events not delivered" in health.reason and "No space left" in health.reason
        snap = sampler.sample()
        assert snap.value("ovstop_ebpf_delivery_errors_total") == 3.0
        assert snap.health["ebpf"].reason == ""  # no new failure since: up again
        broken[0] = False
        capture._on_raw(None, raw, len(raw))
        capture._deliver_batch()
        snap = sampler.sample()
        assert snap.value("ovstop_ebpf_delivery_errors_total") == 3.0 and capture.events_seen == 4
        assert snap.value("ovstop_ebpf_decode_errors_total") == 0.0
    finally:
        full.close()
