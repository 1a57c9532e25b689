"""Shared fixtures: a real private Open vSwitch on the dummy datapath (see ovstop.sandbox)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from ovstop.sandbox.switch import SandboxSwitch

_NO_OVS = shutil.which("ovs-vswitchd") is None or shutil.which("ovsdb-server") is None
_SKIP_REASON = "Open vSwitch is not installed (apt-get install openvswitch-switch)"


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxSwitch]:
    """One started sandbox (4 dummy-pmd ports) shared by the session; treat it as read-mostly."""
    if _NO_OVS:
        pytest.skip(_SKIP_REASON)
    with SandboxSwitch(n_ports=4) as sw:
        yield sw


@pytest.fixture
def fresh_sandbox() -> Iterator[SandboxSwitch]:
    """A sandbox of the test's own (about half a second to start), for tests that kill or load it."""
    if _NO_OVS:
        pytest.skip(_SKIP_REASON)
    with SandboxSwitch(n_ports=4) as sw:
        yield sw
