"""eBPF capture in the QEMU guest: datapath cost per packet, events/s without loss, ovstop's own CPU.

Boots the guest (tests/guest/vm.py) and runs benchmarks/guest_ebpf_inside.py there, then prints the figures
and the ratios. The guest runs under TCG software emulation here, which inflates every time by a large and
uneven factor: the ratios (with/without capture, events delivered/lost) are the meaningful part, not the
absolute microseconds.

Run: ``.venv/bin/python benchmarks/guest_ebpf.py [--count 20000] [--rounds 3] [--rates 100,250,500,1000,2000]``
(root, guest image built by scripts/guest/build-rootfs.sh). Writes the raw result to
.guest/out/bench-ebpf.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from guest.vm import GuestError, run_in_guest  # noqa: E402

INSIDE = REPO / "benchmarks" / "guest_ebpf_inside.py"
RESULT_PREFIX = "BENCH-RESULT "


def report(r: dict[str, Any]) -> None:
    off = (r["off_before"]["wall_us_per_pkt"] + r["off_after"]["wall_us_per_pkt"]) / 2
    off_cpu = (r["off_before"]["cpu_us_per_pkt"] + r["off_after"]["cpu_us_per_pkt"]) / 2
    on = r["on"]
    print(f"capture attach (bcc compile + attach): {r['attach_seconds']:.1f} s")
    print("datapath cost per packet (UDP blast ns1 -> ns2, median of rounds):")
    print(
        f"  without capture  {off:8.2f} µs wall  {off_cpu:8.2f} µs sender CPU  "
        f"(before {r['off_before']['wall_us_per_pkt']:.2f}, after detach {r['off_after']['wall_us_per_pkt']:.2f})"
    )
    base = r["on_default"]
    print(
        f"  default probes   {base['wall_us_per_pkt']:8.2f} µs wall  {base['cpu_us_per_pkt']:8.2f} µs sender CPU  "
        f"ratio x{base['wall_us_per_pkt'] / off:.2f} wall, x{base['cpu_us_per_pkt'] / off_cpu:.2f} CPU (aim <= 1.10)"
    )
    print(f"  deep (per-packet hooks) {on['wall_us_per_pkt']:8.2f} µs wall  {on['cpu_us_per_pkt']:8.2f} µs sender CPU")
    print(
        f"  ratio with/without: wall x{on['wall_us_per_pkt'] / off:.2f}, CPU x{on['cpu_us_per_pkt'] / off_cpu:.2f}; "
        f"added {on['wall_us_per_pkt'] - off:.2f} µs/packet"
    )
    print(
        f"  BPF run time (kernel bpf_stats): {on['bpf_ns_per_run']:.0f} ns per program run, "
        f"{on['bpf_ns_per_pkt']:.0f} ns per packet ({on['bpf_runs']} runs)"
    )
    print(
        f"  capture thread CPU during the blasts: {on['capture_cpu_s']:.2f} s for {on['events']} events "
        f"({1e6 * on['capture_cpu_s'] / max(on['events'], 1):.1f} µs/event); {on['lost']} events lost (unsampled)"
    )
    print("pipeline throughput, sampling and rate limit off (2 events per packet):")
    head = ("target pps", "achieved", "events/s", "events", "lost", "loss %", "thread CPU %", "µs/event", "pipeline")
    widths = (10, 9, 9, 8, 7, 7, 12, 9, 9)
    print("  " + " ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True)))
    for s in r["flood"]:
        total = s["events"] + s["lost"]
        loss = 100 * s["lost"] / total if total else 0.0
        print(
            f"  {s['rate']:>10} {s['achieved_pps']:>9.0f} {s['events_per_s']:>9.0f} {s['events']:>8} "
            f"{s['lost']:>7} {loss:>7.2f} {s['capture_cpu_pct']:>12.1f} {s['capture_us_per_event']:>9.0f} "
            f"{s['pipeline_us_per_event']:>9.0f}"
        )
    lossless = [s["events_per_s"] for s in r["flood"] if s["lost"] == 0]
    print(f"  highest rate without loss: {max(lossless):.0f} events/s" if lossless else "  loss at every rate")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000, help="packets per blast")
    parser.add_argument("--rounds", type=int, default=3, help="blasts per configuration")
    parser.add_argument("--rates", default="100,250,500,1000,2000", help="flood steps, packets/s")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each flood step")
    parser.add_argument("--timeout", type=float, default=1500.0, help="guest time limit (s)")
    args = parser.parse_args()
    argv = ["python3", str(INSIDE), "--count", str(args.count), "--rounds", str(args.rounds),
            "--rates", args.rates, "--seconds", str(args.seconds)]  # fmt: skip
    try:
        done = run_in_guest(argv, timeout=args.timeout, on_line=print)
    except GuestError as exc:
        print(f"guest_ebpf: {exc}", file=sys.stderr)
        return 1
    line = next((ln for ln in done.output.splitlines() if ln.startswith(RESULT_PREFIX)), None)
    if done.returncode != 0 or line is None:
        print(f"guest_ebpf: the in-guest benchmark failed (exit {done.returncode})", file=sys.stderr)
        return 1
    result = json.loads(line[len(RESULT_PREFIX) :])
    out = REPO / ".guest" / "out" / "bench-ebpf.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\n=== eBPF capture benchmark (guest under TCG, {done.wall_seconds:.0f} s in all; raw: {out})")
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
