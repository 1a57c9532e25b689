"""The TUI's own cost: CPU per refresh and memory (RSS) of the real ``ovstop`` process over a long run.

Two phases, each measurement ``--minutes`` long, each running the installed console script in a real terminal (a tmux
pane of 200x50, so that all four panes are drawn) and reading its CPU and RSS from /proc:

* live: ``ovstop --unixctl … --db …`` against a sandbox switch with ``--ports`` dummy ports and ``--flows``
  live datapath flows (built like ``benchmarks/scrape.py`` does), refreshing every second; measured with all
  four panes shown, then (same app, same switch) zoomed to the metrics tree alone (key ``1``), where the
  datapath flows are neither dumped nor drawn, then with that tree filtered to ``interface`` (the folded
  interface branch opened: the per-interface series collected and drawn);
* replay: ``ovstop --replay FILE`` of a SYNTHETIC recording in Retis's envelope: ``--events-per-second``
  OVS events (flow_lookup miss, upcall, upcall_enqueue, upcall_return per upcalled packet, over 4,096
  distinct UDP 5-tuples) plus one metrics snapshot line a second (the last snapshot of the checked-in
  sandbox recording, ``seq`` counting up). Synthetic input is on purpose: no real host here makes 10k
  events/s, and the point is the UI's cost at that rate.

The refresh count is the snapshot number shown in the header (``#seq``), read with ``tmux capture-pane``;
the main thread (Textual's event loop: rendering) is reported apart from the whole process (with the
sampler or replay thread). The replay phase also reads the upcall pane's event and drop counters.

Run: ``.venv/bin/python benchmarks/tui.py [--minutes 10] [--ports 1000] [--flows 10000]
[--events-per-second 10000] [--phase live|replay|both]``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scrape import fill_flows  # benchmarks/ is on sys.path when this file is run

from ovstop.errors import OvstopError
from ovstop.events.recording import read_lines, startup_section
from ovstop.events.schema import decode
from ovstop.runtime import Options, running
from ovstop.sandbox.session import SandboxSession

ROOT = Path(__file__).resolve().parent.parent
OVSTOP = ROOT / ".venv" / "bin" / "ovstop"
SNAPSHOT_SOURCE = ROOT / "tests" / "data" / "recordings" / "sandbox.jsonl"
SIZE = (200, 50)
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SEQ = re.compile(r"  #(\d+)")
EVENTS = re.compile(r"(\d+) events \((\d+)/s\), dropped (\d+) \(rate limit (\d+), ring (\d+)\)")
KEYS = 4096


# -- the app in a terminal -------------------------------------------------------------------------------
class Terminal:
    """One detached tmux session running one command; ``pid`` is the command's (the shell exec'd it)."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.name = f"ovstop-bench-{os.getpid()}"
        cmd = f"cd {shlex.quote(str(cwd))} && exec {shlex.join(argv)}"
        self._tmux("new-session", "-d", "-s", self.name, "-x", str(SIZE[0]), "-y", str(SIZE[1]), cmd)
        self.pid = int(self._tmux("list-panes", "-t", self.name, "-F", "#{pane_pid}").split()[0])

    def _tmux(self, *args: str) -> str:
        res = subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10)
        if res.returncode != 0:
            raise OvstopError(f"tmux {args[0]}: {res.stderr.strip()}")
        return res.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 120.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = pattern.search(self.screen())
            if found:
                return found
            time.sleep(0.2)
        raise OvstopError(f"the screen never showed {pattern.pattern!r}; last screen:\n{self.screen()}")

    def close(self) -> None:
        """Quit the app with q; kill the session if it is still there after 20 s."""
        with contextlib.suppress(OvstopError):
            self.keys("q")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and Path(f"/proc/{self.pid}").exists():
            time.sleep(0.1)
        with contextlib.suppress(OvstopError):
            self._tmux("kill-session", "-t", self.name)


@dataclass(frozen=True)
class Reading:
    wall: float
    cpu: float
    """Seconds of CPU (user + system) of the whole process."""
    ui_cpu: float
    """Seconds of CPU of its main thread (Textual's loop)."""
    rss: int
    seq: int


def _ticks(stat_path: str) -> float:
    with open(stat_path) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15 of stat)


def read(term: Terminal) -> Reading:
    with open(f"/proc/{term.pid}/statm") as f:
        rss = int(f.read().split()[1]) * PAGE
    cpu = _ticks(f"/proc/{term.pid}/stat")
    ui = _ticks(f"/proc/{term.pid}/task/{term.pid}/stat")
    seq = int(term.wait_for(SEQ).group(1))
    return Reading(time.monotonic(), cpu, ui, rss, seq)


def measure(term: Terminal, minutes: float, extra: Callable[[str], str] | None = None) -> Iterator[str]:
    """Wait for the app to show data, then read it every 30 s for ``minutes``; yields report lines."""
    term.wait_for(SEQ)
    time.sleep(5)  # past start-up (imports, first layout)
    start = read(term)
    peak = start.rss
    yield f"  start: RSS {start.rss / 2**20:.1f} MiB, snapshot #{start.seq}"
    end_at = start.wall + minutes * 60
    last = start
    while time.monotonic() < end_at:
        time.sleep(min(30.0, max(end_at - time.monotonic(), 0.0)))
        last = read(term)
        peak = max(peak, last.rss)
    wall, refreshes = last.wall - start.wall, max(last.seq - start.seq, 1)
    cpu, ui = last.cpu - start.cpu, last.ui_cpu - start.ui_cpu
    yield (
        f"  {wall / 60:.1f} min, {refreshes} refreshes: CPU {cpu / refreshes * 1000:.1f} ms/refresh "
        f"(UI thread {ui / refreshes * 1000:.1f} ms), {100 * cpu / wall:.1f}% of a CPU "
        f"(UI thread {100 * ui / wall:.1f}%)"
    )
    yield f"  end: RSS {last.rss / 2**20:.1f} MiB (peak {peak / 2**20:.1f} MiB, start {start.rss / 2**20:.1f} MiB)"
    if extra is not None:
        yield extra(term.screen())


# -- phase 1: a big live switch --------------------------------------------------------------------------
def live_phase(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    options = Options(sandbox=True, sandbox_ports=args.ports, traffic_pps=0.0, ebpf=False)
    t0 = time.monotonic()
    with running(options) as rt:
        session: SandboxSession | None = rt.sandbox
        if session is None:
            raise OvstopError("the runtime started no sandbox")
        n_flows = fill_flows(session, args.flows)
        yield (
            f"live: sandbox with {args.ports} ports and {n_flows} datapath flows ready in {time.monotonic() - t0:.0f}s"
        )
        if n_flows < args.flows:
            raise OvstopError(f"only {n_flows} datapath flows, wanted {args.flows}")
        sw = session.switch
        term = Terminal(
            [str(OVSTOP), "--unixctl", str(sw.unixctl_path), "--db", sw.db_remote, "--no-ebpf", "-d", "1"], workdir
        )
        try:
            yield "  all four panes (200x50):"
            yield from measure(term, args.minutes)
            # The same app on the same switch, zoomed to the metrics tree: no flow dump, no flow table.
            term.keys("1")
            yield "  metrics pane only (key 1):"
            yield from measure(term, args.minutes)
            # The folded interface branch is collected only once opened: a filter opens every matching
            # branch, so this is the tree with every per-interface series collected and drawn.
            term.keys("/")
            time.sleep(1)
            term.keys("interface", "Enter")
            yield "  metrics pane filtered to 'interface' (every per-interface series collected and shown):"
            yield from measure(term, args.minutes)
        finally:
            term.close()


# -- phase 2: a 10k events/s replay ----------------------------------------------------------------------
def _frame(i: int) -> str:
    """A UDP/IPv4 Ethernet frame (base64, as in Retis's packet section) of tuple ``i``."""
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 64, 17, 0, bytes([10, 0, i >> 8 & 15, i & 255]), bytes([10, 1, 0, 1])
    )
    udp = struct.pack("!HHHH", 1024 + i, 53, 8, 0)
    eth = bytes.fromhex("0a00000000010a00000000020800")
    return base64.b64encode(eth + ip + udp).decode()


def _upcall_events(ts: int, i: int, packet: dict[str, str]) -> list[dict[str, Any]]:
    """The four events of one upcalled packet (probe names as Retis reports them)."""
    cpu = i % 2
    common = {"timestamp": ts, "smp_id": cpu, "task": {"pid": 0, "tgid": 0, "comm": "swapper/0"}}

    def ev(dt: int, probe: str, kind: str, ovs: dict[str, Any], **more: Any) -> dict[str, Any]:
        return {
            "common": {**common, "timestamp": ts + dt},
            "kernel": {"symbol": probe, "probe_type": kind},
            "ovs": ovs,
            **more,
        }

    queue = 0x1000 + i
    return [
        ev(
            0,
            "ovs_flow_tbl_lookup_stats",
            "kretprobe",
            {"event_type": "flow_lookup", "flow": 0, "sf_acts": 0, "n_mask_hit": 3, "n_cache_hit": 0},
            packet=packet,
        ),
        ev(
            20,
            "openvswitch:ovs_dp_upcall",
            "raw_tracepoint",
            {"event_type": "upcall", "cmd": 1, "port": 1 + i % 8, "cpu": cpu},
            packet=packet,
        ),
        ev(
            40,
            "queue_userspace_packet",
            "kretprobe",
            {
                "event_type": "upcall_enqueue",
                "ret": 0,
                "cmd": 1,
                "port": 1 + i % 8,
                "upcall_ts": ts + 20,
                "upcall_cpu": cpu,
                "queue_id": queue,
            },
        ),
        ev(
            60,
            "ovs_dp_upcall",
            "kretprobe",
            {"event_type": "upcall_return", "upcall_ts": ts + 20, "upcall_cpu": cpu, "ret": 0},
        ),
    ]


def write_event_recording(path: Path, seconds: int, per_second: int) -> int:
    """A synthetic recording: ``per_second`` events and one snapshot line per second; returns its size."""
    snapshot = next(line.snapshot for line in reversed(list(read_lines(SNAPSHOT_SOURCE))) if line.snapshot)
    packets = [{"data": _frame(i), "len": 42, "capture_len": 42} for i in range(KEYS)]
    sample = _upcall_events(1, 0, packets[0])
    assert all(decode(obj) is not None for obj in sample)  # the envelope is one ovstop (and Retis) reads
    gap = 1_000_000_000 * 4 // per_second
    base = 10**12
    with path.open("w") as out:
        out.write(json.dumps({"common": {"timestamp": base}, "startup": startup_section("synthetic")}) + "\n")
        upcall = 0
        for second in range(seconds):
            t = base + second * 1_000_000_000
            snapshot["seq"] = second + 1
            snapshot["timestamp"] = 1.7e9 + second
            line = {"common": {"timestamp": t}, "ovstop": {"kind": "snapshot", "data": snapshot}}
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
            for k in range(per_second // 4):
                for obj in _upcall_events(t + 1000 + k * gap, upcall, packets[upcall % KEYS]):
                    out.write(json.dumps(obj, separators=(",", ":")) + "\n")
                upcall += 1
    return path.stat().st_size


def _event_counters(minutes: float, per_second: int) -> Callable[[str], str]:
    def report(screen: str) -> str:
        found = EVENTS.search(screen)
        if found is None:
            return "  (the upcall pane's counters were not on the screen)"
        accepted, rate, dropped, limited, ring = (int(g) for g in found.groups())
        return (
            f"  events: {accepted} accepted (~{per_second * (minutes * 60 + 5):.0f} played; shown rate "
            f"{rate}/s), dropped {dropped} (rate limit {limited}, pushed out of the 10k ring {ring})"
        )

    return report


def replay_phase(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    path = workdir / "synthetic-events.jsonl"
    t0 = time.monotonic()
    size = write_event_recording(path, int(args.minutes * 60) + 60, args.events_per_second)
    yield (
        f"replay: synthetic recording, {args.events_per_second} events/s, {size / 2**20:.0f} MiB, "
        f"written in {time.monotonic() - t0:.0f}s"
    )
    term = Terminal([str(OVSTOP), "--replay", str(path)], workdir)
    try:
        yield from measure(term, args.minutes, _event_counters(args.minutes, args.events_per_second))
    finally:
        term.close()
        path.unlink()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--minutes", type=float, default=10.0, help="measured time per phase (default 10)")
    p.add_argument("--ports", type=int, default=1000, help="live: dummy ports (default 1000)")
    p.add_argument("--flows", type=int, default=10_000, help="live: datapath flows (default 10000)")
    p.add_argument("--events-per-second", type=int, default=10_000, help="replay: event rate (default 10000)")
    p.add_argument("--phase", choices=("live", "replay", "both"), default="both")
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.ports < 1 or args.flows < 0 or args.events_per_second < 4:
        p.error("--minutes and --ports must be positive, --flows not negative, --events-per-second >= 4")
    if shutil.which("tmux") is None or not OVSTOP.exists():
        print(f"tui benchmark: needs tmux and the installed console script {OVSTOP}", file=sys.stderr)
        return 1
    phases = (
        [live_phase, replay_phase] if args.phase == "both" else [live_phase if args.phase == "live" else replay_phase]
    )
    try:
        with tempfile.TemporaryDirectory(prefix="ovstop-tui-bench-") as tmp:
            for phase in phases:
                for line in phase(args, Path(tmp)):
                    print(line, flush=True)
    except OvstopError as exc:
        print(f"tui benchmark: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
