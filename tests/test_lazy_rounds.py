"""The exporter's rounds on a real switch: a lazy store (``Runtime.serve_rounds``) skips what did not change,
and its snapshots read exactly as the eager store's (the TUI's, pinned down in tests/test_store.py) fed the
very same rounds: values, rates, histogram intervals, histories, stale marks."""

from __future__ import annotations

import time
from typing import Any

from ovstop.model.store import MetricStore, Snapshot
from ovstop.runtime import Options, running
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator


def reading(snap: Snapshot) -> list[tuple[Any, ...]]:
    return [(s.name, s.labels, s.value, s.rate, s.interval_histogram, tuple(s.history), s.stale) for s in snap.series]


def test_exporter_rounds_follow_what_changed_and_read_as_the_eager_store(fresh_sandbox: SandboxSwitch) -> None:
    options = Options(unixctl=str(fresh_sandbox.unixctl_path), db=fresh_sandbox.db_remote, ebpf=False, history=6)
    with running(options) as rt:
        lazy = rt.sampler.store
        eager = MetricStore(history=lazy.history, tree_order=lazy._rank)  # the same order of subsystems
        twins: list[tuple[Snapshot, Snapshot]] = []
        made_new: list[float] = []
        real_update = lazy.update

        def both(batches: Any, *args: Any, **kwargs: Any) -> Snapshot:
            batches = list(batches)
            snap = real_update(batches, *args, **kwargs)
            twins.append((snap, eager.update(batches, *args, **kwargs)))
            made_new.append(sum(s.made_in == snap.seq for s in snap.value_series) / len(snap.series))
            return snap

        lazy.update = both  # type: ignore[method-assign]
        rt.first_sample()
        rt.serve_rounds()
        assert lazy.lazy
        gen = TrafficGenerator(fresh_sandbox, seed=5)
        try:
            for i in range(16):
                if i % 4 == 1:
                    gen.inject(3, repeats=2, port=1 + i % 4)  # new flows, upcalls and hits on one port
                if i == 9:
                    fresh_sandbox.vsctl("set", "Interface", "p2", "mtu_request=1400")
                rt.sampler.sample()
                time.sleep(0.2)
        finally:
            gen.stop()
    assert len(twins) == 17  # the first round, then 16 exporter rounds
    for i, (lazy_snap, eager_snap) in enumerate(twins):
        assert reading(lazy_snap) == reading(eager_snap), f"round {i}"
    for lazy_snap, eager_snap in twins[::5]:  # read again after the stores moved on: the same
        assert reading(lazy_snap) == reading(eager_snap)
    # A quiet round makes few new series (the eager store makes every one anew): the round follows what changed.
    assert min(made_new) < 0.5, made_new
    assert any(s.value == 1400.0 for s in twins[-1][0].find("ovs_vswitchd_interface_mtu", interface="p2"))
