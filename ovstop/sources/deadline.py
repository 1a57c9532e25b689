"""One deadline for a whole collection round, shared by every blocking call in it.

Each call to a source has a timeout, but a round makes many calls: against a hung ovs-vswitchd (stopped,
or stuck in a long revalidation) a timeout per call added up to several timeouts per round, and a
Prometheus scrape gave up before the page came. The sampler opens a round with :func:`round_deadline`;
a source asks :func:`budget` how long its next call may wait: its own timeout or what is left of the
round, whichever is shorter, and fails at once, without touching the socket, when nothing is left.

The deadline lives in a context variable, so rounds run from different threads never see each other's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

from ovstop.errors import SourceError

_deadline: ContextVar[tuple[float, float] | None] = ContextVar("ovstop_round_deadline", default=None)


class DeadlineExceeded(SourceError):
    """The round's deadline had passed before this source could be asked."""


@contextlib.contextmanager
def round_deadline(seconds: float) -> Iterator[None]:
    """Calls made inside the block share ``seconds`` from now."""
    token = _deadline.set((time.monotonic() + seconds, seconds))
    try:
        yield
    finally:
        _deadline.reset(token)


def budget(timeout: float, what: str) -> float:
    """How long a call to ``what`` may wait: ``timeout`` capped by the round's deadline, when there is one."""
    current = _deadline.get()
    if current is None:
        return timeout
    deadline, seconds = current
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded(f"{what}: not asked, the round's {seconds:g}s deadline had passed")
    return min(timeout, left)
