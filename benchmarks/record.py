"""``--record`` bytes per second on the sandbox switch (4 ports, 200 packets/s of generated traffic; or ``--ports``).

One run, one switch: a runtime with ``--sandbox --record FILE.jsonl.gz`` (what ``ovstop --sandbox --record``
builds) collects once a second for ``--seconds``; the recording's size on disk is read at the end of the
warm-up and at the end (the recorder flushes after every snapshot, so the size on disk is what a crash
would leave). Beside it, the same snapshots written the old way (every snapshot whole: every series' name,
labels, help, rate and history, as ``ovstop snapshot`` writes them) are counted, plain and gzip-compressed.

Run: ``.venv/bin/python benchmarks/record.py [--seconds 60] [--warmup 10] [--ports 1000 --pps 2000]``. The targets
(issue 9): at most 2 KB/s for the 4-port sandbox, 200 KB/s at 1,000 ports.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from ovstop.export import snapshot as snapshot_doc
from ovstop.runtime import Options, running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--ports", type=int, default=4, help="dummy ports of the sandbox (default 4)")
    parser.add_argument("--pps", type=float, default=200.0, help="generated packets/s (default 200)")
    args = parser.parse_args()
    options = Options(sandbox=True, sandbox_ports=args.ports, traffic_pps=args.pps, ebpf=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rec.jsonl.gz"
        whole = bytearray()
        with running(replace(options, record=str(path))) as rt:
            rt.first_sample()
            started = time.monotonic()
            mark: tuple[float, int] | None = None
            while time.monotonic() - started < args.warmup + args.seconds:
                time.sleep(max(1.0 - (time.monotonic() - started) % 1.0, 0.0))
                snap = rt.sampler.sample()
                if mark is None and time.monotonic() - started >= args.warmup:
                    mark = (time.monotonic(), path.stat().st_size)
                elif mark is not None:
                    whole += json.dumps(snapshot_doc.to_dict(snap), separators=(",", ":")).encode() + b"\n"
            assert mark is not None
            seconds = time.monotonic() - mark[0]
            recorded = path.stat().st_size - mark[1]
            series = len(snap.series)
            flows = len(snap.tables.get("dp_flows", []))
    print(
        f"sandbox: {args.ports} ports, {args.pps:g} packets/s, {series} series, {flows} datapath flows at the end, "
        f"{seconds:.0f} s measured"
    )
    print(f"--record (frames, gzip):          {recorded / seconds / 1024:8.2f} KiB/s")
    print(f"whole snapshots, plain (old way): {len(whole) / seconds / 1024:8.2f} KiB/s")
    print(f"whole snapshots, gzip:            {len(gzip.compress(bytes(whole))) / seconds / 1024:8.2f} KiB/s")
    target = "<= 2 KB/s at 4 ports" if args.ports <= 4 else "<= 200 KB/s at 1,000 ports"
    print(f"ratio old/new: {len(whole) / max(recorded, 1):.1f}x  (target: {target})")


if __name__ == "__main__":
    main()
