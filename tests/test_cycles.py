"""Cycle collector pacing in a process without UI: no automatic collection runs during rounds on a real
switch, what the rounds kept is frozen, and a reference cycle is still freed by the periodic full collection.
The collector's own callbacks (``gc.callbacks``) are the witness, not ovstop's bookkeeping."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from ovstop.cycles import PACED_YOUNG_THRESHOLD
from ovstop.runtime import Options, Runtime, running
from ovstop.sandbox.switch import SandboxSwitch


class Node:
    """Something that can take part in a reference cycle and be watched by a weak reference."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def paced(sandbox: SandboxSwitch) -> Iterator[Runtime]:
    threshold = gc.get_threshold()
    try:
        with running(Options(unixctl=str(sandbox.unixctl_path), db=sandbox.db_remote, ebpf=False)) as rt:
            rt.first_sample()
            rt.serve_rounds()
            yield rt
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_rounds_run_without_automatic_collections(paced: Runtime) -> None:
    collections: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    assert gc.get_threshold()[0] == PACED_YOUNG_THRESHOLD
    gc.callbacks.append(seen)
    try:
        for _ in range(5):
            snap = paced.sampler.sample()
            assert gc.get_count()[0] == 0  # frozen after the round: the young generation starts over
    finally:
        gc.callbacks.remove(seen)
    assert collections == []
    assert len(snap.series) > 50  # real rounds of a real switch, not empty ones
    assert gc.get_freeze_count() > 0


def test_a_cycle_made_between_rounds_is_freed_by_the_full_collection(paced: Runtime) -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    watch = weakref.ref(a)
    paced.sampler.sample()  # frozen with the round's objects
    del a, b
    paced.sampler.sample()
    assert watch() is not None  # a frozen cycle waits for the full collection
    paced.pacer.full_every = 0.0
    paced.sampler.sample()
    assert watch() is None
