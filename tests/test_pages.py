"""The /metrics page made family by family (``ovstop.export.pages``): the very bytes prometheus-client writes for
the whole page, round after round on a real switch with traffic, while the families that did not change are
taken from the last page."""

from __future__ import annotations

import time

from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from ovstop.export.pages import PageCache
from ovstop.export.prometheus import OPENMETRICS_EOF, render
from ovstop.model.metric import Kind, MetricSpec, labels_of
from ovstop.model.series import Series
from ovstop.model.store import Snapshot
from ovstop.runtime import Options, running
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sandbox.traffic import TrafficGenerator

ENCODERS = (generate_latest, generate_openmetrics)


def test_pages_are_whole_renderings_and_reuse_the_unchanged_families(fresh_sandbox: SandboxSwitch) -> None:
    options = Options(unixctl=str(fresh_sandbox.unixctl_path), db=fresh_sandbox.db_remote, ebpf=False)
    caches = [PageCache(encoder) for encoder in ENCODERS]
    compared = 0
    with running(options) as rt:
        rt.first_sample()
        rt.serve_rounds()  # the exporter's lazy store: unchanged series are the same objects
        gen = TrafficGenerator(fresh_sandbox, rate_pps=200.0, seed=3)
        gen.start()
        try:
            for i in range(8):  # past an update of the interfaces' statistics (every 5 s)
                if i == 4:
                    fresh_sandbox.vsctl("set", "Interface", "p2", "mtu_request=1400")
                snap = rt.sampler.sample()
                for cache, encoder in zip(caches, ENCODERS, strict=True):
                    assert cache.render(snap) == render(snap, encoder).removesuffix(OPENMETRICS_EOF), f"round {i}"
                    compared += 1
                time.sleep(1)
        finally:
            gen.stop()
    assert compared == 16
    assert all(cache.reused > 0 for cache in caches)  # the unchanged families were taken from the last page
    assert b"1400" in caches[0].render(snap)


def test_a_name_in_two_stretches_is_one_family_as_prometheus_client_writes_it() -> None:
    gauge = MetricSpec("ovs_x", Kind.GAUGE, "x", ("datapath", "x"), ("n",))
    other = MetricSpec("ovs_y", Kind.GAUGE, "y", ("datapath", "y"), ("n",))
    series = tuple(Series(spec, labels_of(n=str(i)), float(i)) for i, spec in enumerate((gauge, other, gauge)))
    snap = Snapshot(1, 1000.0, None, series, {})
    for encoder in ENCODERS:
        page = PageCache(encoder).render(snap)
        assert page == render(snap, encoder).removesuffix(OPENMETRICS_EOF)
        assert page.count(b"# TYPE ovs_x gauge") == 1
