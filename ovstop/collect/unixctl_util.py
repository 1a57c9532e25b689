"""What the unixctl collectors share: the client from ``Sources`` and the list of datapaths."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from ovstop.collect.base import Sources, Tables
from ovstop.collect.memo import SampleMemo
from ovstop.errors import SourceError
from ovstop.model.metric import Sample

if TYPE_CHECKING:
    from ovstop.sources.unixctl import UnixctlClient


def client_of(sources: Sources) -> UnixctlClient:
    if sources.unixctl is None:
        raise SourceError("no ovs-vswitchd unixctl connection configured")
    return sources.unixctl


def datapaths(client: UnixctlClient) -> list[str]:
    """Datapath names as ``type@name`` (``netdev@ovs-netdev``), from ``dpctl/dump-dps``."""
    # Several collectors need the list every round and it rarely changes: ask every few seconds at most.
    return [line.strip() for line in client.call_cached("dpctl/dump-dps", ttl=5.0).splitlines() if "@" in line]


def version_at_least(client: UnixctlClient, *wanted: int) -> bool:
    """Whether the daemon's version (``3.1.0``) is at least ``wanted``; an unknown version is not."""
    numbers = tuple(int(n) for n in re.findall(r"\d+", client.version)[: len(wanted)])
    return bool(numbers) and numbers >= wanted


class ReplyCollector:
    """A collector of one command's reply: ``samples_of`` makes its samples, only when the reply changed
    (:class:`~ovstop.collect.memo.SampleMemo`)."""

    source = "unixctl"
    command: ClassVar[str]

    def __init__(self) -> None:
        self._memo: SampleMemo[str] = SampleMemo()

    def collect(self, sources: Sources, tables: Tables) -> list[Sample]:
        return self._memo.samples(client_of(sources).call(self.command), self.samples_of)

    def samples_of(self, reply: str) -> Iterable[Sample]:
        raise NotImplementedError
