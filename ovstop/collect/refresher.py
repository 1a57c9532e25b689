"""Collection rounds on one thread, for readers that must not wait for them (``/metrics``, ``/snapshot.json``).

The refresher runs a round every ``interval`` seconds (start to start, so rounds do not drift), and one
sooner when a reader finds the newest snapshot older than ``fresh`` and kicks it. A kick that arrives while a
round runs is absorbed by that round: at most one round is ever in flight, and a reader never runs one itself.

A reader (:meth:`Refresher.read`) takes the newest published snapshot as long as it is younger than
``bound``; an older one is never handed out: the reader waits for the round in flight, within its budget,
and otherwise gets a :class:`SourceError` saying how old the newest snapshot is and why (the round that is
still running, or the one that failed). ``prepare`` hooks run on the refresher's thread before a snapshot is
published, so work done for it there (rendering the page scrapers share) costs a reader nothing: until it is
done they keep getting the previous snapshot.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from ovstop.collect.sampler import Sampler
from ovstop.errors import OvstopError, SourceError, describe
from ovstop.model.store import Snapshot

log = logging.getLogger(__name__)

DEFAULT_ROUND_TIMEOUT = 10.0
"""What a round may take when the sampler has no deadline of its own (for the default bound)."""


@dataclass(frozen=True)
class Published:
    """A snapshot as readers get it: ``read_at`` is the monotonic time its values were read."""

    snapshot: Snapshot
    read_at: float

    def age(self) -> float:
        """Seconds since the values were read."""
        return time.monotonic() - self.read_at


class Refresher:
    """Runs ``sampler``'s rounds on its own thread (:meth:`start`) or the caller's (:meth:`run`).

    ``fresh`` defaults to the interval: a reader kicks a round only when the schedule is late (more rounds
    would cost CPU that the readers' threads then wait for). ``bound`` defaults to two intervals plus two
    round deadlines: a healthy refresher publishes at least every interval plus one round (which may use its
    whole deadline, and then needs its own time to fold the values into the store), and a snapshot is
    already that round's duration old when it is published; the rest is slack for a loaded machine. A
    snapshot the sampler already holds (the runtime's first one) is the first published.
    """

    def __init__(
        self, sampler: Sampler, interval: float, fresh: float | None = None, bound: float | None = None
    ) -> None:
        self.sampler = sampler
        self.interval = interval
        self.fresh = interval if fresh is None else fresh
        round_timeout = sampler.round_timeout if sampler.round_timeout is not None else DEFAULT_ROUND_TIMEOUT
        self.bound = 2 * (interval + round_timeout) if bound is None else bound
        self.prepare: list[Callable[[Snapshot], None]] = []
        """Called on the refresher's thread with each new snapshot, before readers can see it."""
        self.rounds = 0
        """Rounds finished (published or failed)."""
        self._cond = threading.Condition()
        first = sampler.latest
        self._published = None if first is None else Published(first, _monotonic_of(first))
        self._kicked = False
        self._running_since: float | None = None
        self._failure: str | None = None  # why the last round failed; None after a good one
        self._fatal: str | None = None  # why rounds stopped for good (a recording that cannot be written)
        self._stopped = False
        self._thread: threading.Thread | None = None

    # -- the round loop ------------------------------------------------------------------------------------
    def run(self) -> None:
        """Run rounds until :meth:`close`; an :class:`OvstopError` from a round (``--record`` on a full disk)
        stops them for good and is raised here, after readers have been told. A bug in a round is logged,
        readers are told, and rounds go on."""
        latest = self._published
        next_at = time.monotonic() if latest is None else latest.read_at + self.interval
        while True:
            with self._cond:
                while not self._stopped and not self._kicked and (wait := next_at - time.monotonic()) > 0:
                    self._cond.wait(wait)
                if self._stopped:
                    return
                self._kicked = False
                started = self._running_since = time.monotonic()
            next_at = started + self.interval
            try:
                snap = self.sampler.sample()
                for hook in self.prepare:
                    hook(snap)
            except OvstopError as exc:
                self._finish(None, describe(exc), fatal=True)
                raise
            except Exception as exc:  # a bug in a round: say so (traceback in --log), keep serving, retry
                log.exception("collection round failed")
                self._finish(None, f"collection round failed: {describe(exc)}")
                continue
            self._finish(Published(snap, _monotonic_of(snap)), None)

    def _finish(self, published: Published | None, failure: str | None, fatal: bool = False) -> None:
        with self._cond:
            if published is not None:
                self._published = published
            self._failure = failure
            if fatal:
                self._fatal = failure
                self._stopped = True
            self._running_since = None
            self.rounds += 1
            self._cond.notify_all()

    def start(self) -> Refresher:
        """Run the rounds on a daemon thread (what a fatal error stops is then reported to readers only)."""
        self._thread = threading.Thread(target=self._run_quietly, name="ovstop-refresher", daemon=True)
        self._thread.start()
        return self

    def _run_quietly(self) -> None:
        with contextlib.suppress(OvstopError):  # readers get it from read(); nobody else listens here
            self.run()

    def close(self) -> None:
        """Stop after the round in flight, if any (waits for the thread when one was started)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> Refresher:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- readers -------------------------------------------------------------------------------------------
    def kick(self) -> None:
        """Ask for a round now (absorbed by the one in flight, if any)."""
        with self._cond:
            self._kick_locked()

    @property
    def busy_for(self) -> float | None:
        """Seconds the round in flight has been running (None when none runs)."""
        since = self._running_since
        return None if since is None else time.monotonic() - since

    def newest(self) -> Published | None:
        """The newest published snapshot, whatever its age."""
        return self._published

    def ready(self) -> Published | None:
        """The newest snapshot when it is younger than ``bound``, else None, without waiting (a round is
        kicked when it is older than ``fresh``); a SourceError once rounds stopped for good."""
        with self._cond:
            if self._fatal is not None:
                raise SourceError(f"collection stopped: {self._fatal}")
            had = self._published
            if had is None or had.age() > self.fresh:
                self._kick_locked()
            return had if had is not None and had.age() <= self.bound else None

    def read(self, budget: float) -> Published:
        """The newest snapshot younger than ``bound`` (a round is kicked when it is older than ``fresh``);
        when there is none, the next one published within ``budget`` seconds; else a SourceError saying
        why not."""
        with self._cond:
            ready = self.ready()
            if ready is not None:
                return ready
            had = self._published
            rounds = self.rounds
            until = time.monotonic() + budget
            while True:
                if self._published is not had and self._published is not None:
                    return self._published
                if self.rounds != rounds and self._failure is not None:  # the round it waited for failed
                    raise SourceError(self._stale_reason(had, f"the last round failed: {self._failure}"))
                left = until - time.monotonic()
                if left <= 0:
                    busy = self.busy_for
                    running = "no round is running" if busy is None else f"a round has been running {busy:.1f} s"
                    raise SourceError(self._stale_reason(had, running))
                self._cond.wait(left)

    def _kick_locked(self) -> None:
        if self._running_since is None:
            self._kicked = True
            self._cond.notify_all()

    def _stale_reason(self, had: Published | None, why: str) -> str:
        if had is None:
            return f"no collection has finished yet ({why})"
        return f"the newest collection is {had.age():.1f} s old (served up to {self.bound:g} s) and {why}"


def _monotonic_of(snap: Snapshot) -> float:
    """The monotonic time at which ``snap``'s values were read (snapshots carry wall-clock time)."""
    return time.monotonic() - max(0.0, time.time() - snap.timestamp)
