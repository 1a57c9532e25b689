"""Pacing Python's cycle collector for a process that runs one collection round a second for hours.

A round at 1,000 ports makes some 100,000 tracked objects; tens of thousands of them outlive it (the
snapshot's series and tables, the time scrub's copies). With the collector's default pacing they are
traversed again and again while young, and once promoted every full collection rescans all of them.

:meth:`CyclePacer.settle` (every mode, after the first round) freezes what exists then (modules,
replicas, caches: they live as long as the run) and raises the young threshold, so that a round's
short-lived objects die by reference counting before a collection sees them.

:meth:`CyclePacer.round_done` (the exporter: no UI) goes further. What the rounds keep holds no reference
cycles (a full collection after 40 rounds at 1,000 ports found 0 unreachable objects), so it is frozen
after each round (:func:`gc.freeze` also restarts the young generation's count): no automatic collection
sees it again, and it is still freed by reference counting once dropped. At 1,000 ports that took the
40 to 60 ms a round spent in collections (measured with ``gc.callbacks``) to none. Whatever makes cycles
anyway (an exception's traceback) is found by a full collection every :data:`FULL_EVERY` seconds. The
TUI does not freeze per round: Textual's render caches make cycles (180,000 objects a minute at 1,000
ports would wait for the next full collection).
"""

from __future__ import annotations

import gc
import logging
import time

SETTLED_YOUNG_THRESHOLD = 50_000
"""Tracked allocations (net of frees) between young collections once settled (Python's default: 700)."""
PACED_YOUNG_THRESHOLD = 200_000
"""The same when frozen after every round: above what one round allocates, so no collection runs."""
FULL_EVERY = 600.0
"""Seconds between full collections when frozen after every round (at 1,000 ports one takes 0.7 s)."""

log = logging.getLogger(__name__)


class CyclePacer:
    """:meth:`settle` once the process has started; :meth:`round_done` after every round where no UI runs."""

    def __init__(self, full_every: float = FULL_EVERY) -> None:
        self.full_every = full_every
        self._last_full = time.monotonic()

    def settle(self, young: int = SETTLED_YOUNG_THRESHOLD) -> None:
        gc.freeze()
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young, middle, old)

    def round_done(self, *_: object) -> None:
        """Freeze what the round kept; every ``full_every`` seconds, first collect every cycle."""
        now = time.monotonic()
        if now - self._last_full >= self.full_every:
            self._last_full = now
            gc.unfreeze()
            started = time.perf_counter()
            found = gc.collect()
            log.debug("full collection: %d unreachable objects in %.3f s", found, time.perf_counter() - started)
        gc.freeze()
