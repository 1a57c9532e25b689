"""In-guest explain scenario: ovstop's explanation of a kernel datapath flow against ``ofproto/detrace``.

Run as root inside the QEMU guest (scripts/guest/run.sh -- python3 tests/guest/scenario_detrace.py).
On the kernel switch of kernel_switch.py, one UDP datagram from ns1 installs a datapath flow through the
``learn`` rule, three more hit it, and ``revalidator/wait`` lets OVS fill the flow's translation cache.
Where ``ovs-appctl list-commands`` offers ``ofproto/detrace`` (OVS 3.4+: Debian 13's 3.5), ovstop's explain
must use it, and its steps must be the rules ``ovs-appctl ofproto/detrace ufid:<ufid>`` prints, one for one
(table, cookie, priority and match, actions), read here from the text as OVS prints it; where it does not
(Debian 12's 3.1), ovstop must fall back to ``ofproto/trace``. Prints "DETRACE-OK <check>" and
"DETRACE-PASS", or "DETRACE-FAIL <why>".
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from kernel_switch import kernel_switch, send_udp, sh
from scenario_lib import checks, run

from ovstop.explain import explain_flow
from ovstop.runtime import Options, open_runtime

SRC_PORT = 20000

ok, expect = checks("DETRACE")


def detrace_rules(text: str) -> list[tuple[int, str, int | None, str, str]]:
    """(table, cookie, priority, match, actions) of each rule line of detrace's text (OVS 3.4 and 3.5 print
    the rules alone, one a line; later releases indent them under their bridge's name)."""
    rules: list[tuple[int, str, int | None, str, str]] = []
    for line in map(str.strip, text.splitlines()):
        if "n_packets=" not in line and not line.endswith(", no match"):
            continue
        fields = dict(re.findall(r"(cookie|table_id)=(\w+), ", line))
        if line.endswith(", no match"):
            rules.append((int(fields["table_id"]), "", None, "No match", ""))
            continue
        match, _, actions = line.partition(" n_bytes=")[2].split(", ", 1)[1].partition(",actions=")
        match = re.sub(r"^n_offload_packets=\d+, n_offload_bytes=\d+, ", "", match)
        priority = re.match(r"priority=(\d+),?", match)
        rules.append(
            (
                int(fields.get("table_id", "0")),
                fields.get("cookie", ""),
                int(priority.group(1)) if priority else 32768,
                match[priority.end() :] if priority else match,
                actions,
            )
        )
    return rules


def main() -> int:
    return run("DETRACE", body)


def body() -> None:
    with kernel_switch() as rundir:
        ctl = next(rundir.glob("ovs-vswitchd.*.ctl"))
        has_detrace = "ofproto/detrace" in sh("ovs-appctl", "list-commands")
        rt = open_runtime(Options(unixctl=str(ctl), db=f"unix:{rundir}/db.sock", ebpf=False))
        try:
            send_udp([SRC_PORT], 5000)  # upcalled: installs the flow
            deadline = time.monotonic() + 30
            while True:
                rows = rt.sampler.sample().tables.get("dp_flows", [])
                row = next((r for r in rows if f"udp(src={SRC_PORT}," in str(r.get("key"))), None)
                if row is not None:
                    break
                expect(time.monotonic() < deadline, "no datapath flow for the datagram within 30 s")
                time.sleep(0.2)
            # OVS fills a flow's translation cache when a revalidator first sees packets on it.
            send_udp([SRC_PORT], 5000, 3)
            sh("ovs-appctl", "revalidator/wait")
            explanation = explain_flow(rt.sampler.sources, row)
        finally:
            rt.close()
        steps = [(s.table, s.cookie, s.priority, s.match, "; ".join(s.actions)) for s in explanation.trace.steps]
        if not has_detrace:
            expect(explanation.method == "ofproto/trace", f"explained by {explanation.method} without detrace")
            expect(not explanation.fallback, f"fallback reason without detrace: {explanation.fallback}")
            ok("trace", f"no ofproto/detrace in list-commands: {len(steps)} steps by ofproto/trace")
        else:
            truth = sh("ovs-appctl", "ofproto/detrace", f"ufid:{row['ufid']}")
            print(truth, flush=True)
            expect(explanation.method == "ofproto/detrace", f"explained by {explanation.method}: {explanation}")
            expect(steps == detrace_rules(truth), f"ovstop's steps {steps} != detrace's rules")
            expect(any("learn(" in a for *_, a in steps), f"the learn rule is not among the steps: {steps}")
            ok("detrace", f"{len(steps)} rules equal ofproto/detrace ufid:{row['ufid']}: {steps}")


if __name__ == "__main__":
    sys.exit(main())
