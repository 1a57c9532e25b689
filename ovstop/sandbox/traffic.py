"""Packets for the sandbox switch, injected with ``netdev-dummy/receive`` over one persistent unixctl socket.

Each call carries a batch of packets for one port. A share ``new_flow_fraction`` of packets carries a 5-tuple
never sent before (an upcall and a new megaflow, see :mod:`ovstop.sandbox.topology`); the rest repeat
recent 5-tuples of the same port (EMC/megaflow hits). Destinations mix east-west traffic between the pmd
ports with traffic to the geneve tunnel (through conntrack NAT), the vxlan tunnel, ``br1`` through the
patch port, and a dropped range.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass

from ovstop.errors import SourceError
from ovstop.sandbox import topology as topo
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sources.unixctl import UnixctlClient

# (weight, first two octets of the destination, or None for another pmd port's subnet)
_DESTINATIONS: tuple[tuple[int, str | None], ...] = (
    (70, None),
    (10, topo.TUNNEL_NET),
    (5, topo.VXLAN_NET),
    (10, topo.SIDE_NET),
    (5, topo.DROP_NET),
)
_RECENT_PER_PORT = 512
_MAX_BATCH = 32  # well under netdev-dummy's 100-packet receive queue
_RX_RE = re.compile(r"packets received: (\d+)")


@dataclass(frozen=True)
class Counters:
    """What the generator has handed to ``netdev-dummy/receive`` so far (offered load: a dummy port's
    receive queue drops packets beyond 100 waiting ones)."""

    packets: int
    new_tuples: int
    calls: int
    errors: int
    last_error: str


class TrafficGenerator:
    """A daemon thread sending ``rate_pps`` packets per second into the sandbox's pmd ports.

    ``rate_pps`` and ``new_flow_fraction`` may be changed while it runs. ``inject`` sends a deterministic
    burst from the caller's thread.
    """

    def __init__(
        self,
        switch: SandboxSwitch,
        rate_pps: float = 1000.0,
        new_flow_fraction: float = 0.05,
        seed: int | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.switch = switch
        self.rate_pps = rate_pps
        self.new_flow_fraction = new_flow_fraction
        self._client = UnixctlClient(lambda: switch.unixctl_path, timeout=timeout)
        self._rng = random.Random(seed)
        self._recent: dict[int, deque[str]] = {}
        self._next_tuple = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._packets = self._new = self._calls = self._errors = 0
        self._last_error = ""

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ovstop-sandbox-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._client.close()

    @property
    def counters(self) -> Counters:
        with self._lock:
            return Counters(self._packets, self._new, self._calls, self._errors, self._last_error)

    # -- deterministic injection ----------------------------------------------------------------------
    def inject(self, n_new_tuples: int, repeats: int = 0, port: int = 1) -> list[str]:
        """Send exactly ``n_new_tuples`` new UDP 5-tuples into pmd port ``port``, then each one ``repeats``
        more times. All go east-west to the next port, so each new tuple makes one upcall and one megaflow.
        Returns the packets (ODP flow strings) of the first round. Raises SourceError if a call fails.
        """
        dst = port % self.switch.topology.n_ports + 1
        flows = [self._new_flow(port, dst, "udp") for _ in range(n_new_tuples)]
        received = self._rx_total()
        for round_no in range(1 + repeats):
            for i in range(0, len(flows), _MAX_BATCH):
                chunk = flows[i : i + _MAX_BATCH]
                self._send(port, chunk, new=len(chunk) if round_no == 0 else 0)
                # netdev-dummy drops packets beyond 100 queued on a port: wait until the datapath has them.
                received += len(chunk)
                self._wait_received(received)
        return flows

    def _rx_total(self) -> int:
        stats = self._client.call("dpif-netdev/pmd-stats-show")
        return sum(int(n) for n in _RX_RE.findall(stats))

    def _wait_received(self, total: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while (seen := self._rx_total()) < total:
            if time.monotonic() > deadline:
                raise SourceError(f"sandbox datapath received {seen} of {total} injected packets")
            time.sleep(0.001)

    # -- packets --------------------------------------------------------------------------------------
    def _new_flow(self, src_port: int, dst_port: int | None, proto: str, dst_net: str | None = None) -> str:
        with self._lock:
            n = self._next_tuple
            self._next_tuple += 1
        sport = 1024 + n % 60000
        src_ip = f"{topo.subnet_of(src_port)}.{10 + (n // 60000) % 240}"
        if dst_net is None:
            if dst_port is None:
                raise ValueError("a flow needs a destination port or a destination network")
            dst_ip, dst_mac = f"{topo.subnet_of(dst_port)}.{10 + n % 200}", topo.mac_of(dst_port)
        else:
            dst_ip, dst_mac = f"{dst_net}.{n % 250}.{1 + n % 250}", "02:00:00:ff:ff:fe"
        dport = (53, 80, 443, 8080, 5201)[n % 5]
        flow = (
            f"eth(src={topo.mac_of(src_port)},dst={dst_mac}),eth_type(0x0800),"
            f"ipv4(src={src_ip},dst={dst_ip},proto={17 if proto == 'udp' else 6},tos=0,ttl=64,frag=no),"
            f"{proto}(src={sport},dst={dport})"
        )
        self._recent.setdefault(src_port, deque(maxlen=_RECENT_PER_PORT)).append(flow)
        return flow

    def _random_flow(self, src_port: int) -> tuple[str, bool]:
        """One packet for ``src_port``: a new 5-tuple or a recent one; returns (flow, is_new)."""
        recent = self._recent.get(src_port)
        if recent and self._rng.random() >= self.new_flow_fraction:
            return self._rng.choice(recent), False
        n_ports = self.switch.topology.n_ports
        net = self._rng.choices([d for _, d in _DESTINATIONS], [w for w, _ in _DESTINATIONS])[0]
        dst_port = None
        if net is None:  # another port: OpenFlow drops output to the input port
            dst_port = src_port % n_ports + 1 if n_ports > 1 else src_port
            dst_port = self._rng.choice(
                [k for k in (dst_port, self._rng.randint(1, n_ports)) if k != src_port] or [dst_port]
            )
        proto = "udp" if self._rng.random() < 0.7 else "tcp"
        return self._new_flow(src_port, dst_port, proto, net), True

    def _send(self, port: int, flows: list[str], new: int) -> None:
        self._client.call("netdev-dummy/receive", f"p{port}", *flows)
        with self._lock:
            self._packets += len(flows)
            self._new += new
            self._calls += 1

    # -- the thread -----------------------------------------------------------------------------------
    def _run(self) -> None:
        next_due = time.monotonic()
        while not self._stop.is_set():
            rate = self.rate_pps
            if rate <= 0:
                self._stop.wait(0.1)
                next_due = time.monotonic()
                continue
            # About 50 calls a second until batches are full; a batch never mixes ports.
            batch = max(1, min(_MAX_BATCH, round(rate / 50)))
            port = self._rng.randint(1, self.switch.topology.n_ports)
            picks = [self._random_flow(port) for _ in range(batch)]
            try:
                self._send(port, [f for f, _ in picks], sum(is_new for _, is_new in picks))
            except SourceError as exc:
                with self._lock:
                    self._errors += 1
                    self._last_error = str(exc)
                self._stop.wait(0.2)
                next_due = time.monotonic()
                continue
            next_due += batch / rate
            delay = next_due - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            elif delay < -1.0:  # far behind (rate above what the socket sustains): do not burst to catch up
                next_due = time.monotonic()
