"""End to end: the INSTALLED ``ovstop --sandbox`` in a real terminal (a tmux pane on a private tmux server).

The screen is read with ``tmux capture-pane -p``; keys go in with ``send-keys``. Checks that live numbers
show and change, that the keys do what the help says (health checks included, with a tunnel taken
down for real), that ``q`` exits with status 0 and that the terminal
going away (the tmux session killed: SIGHUP) leaves no ovstop, ovsdb-server or ovs-vswitchd process and no
sandbox directory behind. The sandbox is made under a TMPDIR of the test's own, so only this run's
directories are looked at. All waits poll with a deadline.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

OVSTOP = Path(sys.executable).parent / "ovstop"
SIZE = (120, 40)
SEQ = re.compile(r"  #(\d+)")
RATES = re.compile(r"^ \S+ pkt/s  dp hit .*$", re.MULTILINE)
DAEMONS = ("ovsdb-server", "ovs-vswitchd")

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None or shutil.which("ovs-vswitchd") is None or not OVSTOP.exists(),
    reason="needs tmux, Open vSwitch and the installed ovstop console script",
)


class Tmux:
    """A private tmux server (its own socket, no user config) running one shell command in one pane."""

    def __init__(self, command: str, size: tuple[int, int] = SIZE) -> None:
        self.socket = f"ovstop-e2e-{os.getpid()}-{time.monotonic_ns()}"
        self.run("new-session", "-d", "-s", "e2e", "-x", str(size[0]), "-y", str(size[1]), command)
        self.shell = int(self.run("list-panes", "-t", "e2e", "-F", "#{pane_pid}").split()[0])

    def run(self, *args: str) -> str:
        res = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args], capture_output=True, text=True, timeout=10
        )
        assert res.returncode == 0, f"tmux {args[0]}: {res.stderr.strip()}"
        return res.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "e2e")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "e2e", *keys)

    def wait(self, ok: Callable[[str], object], what: str, timeout: float = 30.0) -> str:
        """Poll the screen until ``ok(screen)`` is true; fail with the last screen after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if ok(screen):
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"the screen never showed {what} in {timeout:.0f}s; last screen:\n{screen}")
            time.sleep(0.1)

    def kill_session(self) -> None:
        self.run("kill-session", "-t", "e2e")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


def _parents() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name) of every process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name, _, rest = stat.partition("(")[2].rpartition(")")
            out[int(entry.name)] = (int(rest.split()[1]), name)
    return out


def _descendants(pid: int) -> dict[int, str]:
    procs = _parents()
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, name) in procs.items():
            if ppid == parent and child not in found:
                found[child] = name
                todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists() and "(Z)" not in _state(pid)}


def _state(pid: int) -> str:
    try:
        return "(" + Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] + ")"
    except OSError:
        return "(gone)"


def _wait_gone(pids: set[int], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pids), f"left behind: {[(p, _parents().get(p)) for p in _alive(pids)]}"


def _seq(screen: str) -> int:
    found = SEQ.search(screen)
    return int(found.group(1)) if found else -1


def _rates(screen: str) -> str:
    """The header's line of headline rates ("… pkt/s  dp hit …"), empty when not on the screen."""
    found = RATES.search(screen)
    return found.group(0) if found else ""


class Run:
    """``ovstop --sandbox`` started by a shell in tmux; the shell records its exit status in a file."""

    def __init__(self, tmp: Path) -> None:
        self.tmpdir = tmp / "tmp"
        self.tmpdir.mkdir()
        self.status = tmp / "exit-status"
        command = (
            f"cd {shlex.quote(str(tmp))} && TMPDIR={shlex.quote(str(self.tmpdir))} "
            f"{shlex.quote(str(OVSTOP))} --sandbox --no-ebpf; echo EXIT=$? > {shlex.quote(str(self.status))}"
        )
        self.tmux = Tmux(command)
        try:
            self.first = self.tmux.wait(lambda s: _seq(s) >= 2 and RATES.search(s), "the first samples", timeout=60)
            kids = _descendants(self.tmux.shell)
            [self.pid] = [pid for pid, name in kids.items() if name == "ovstop"]
            self.daemons = {pid for pid, name in kids.items() if name in DAEMONS}
            assert {kids[p] for p in self.daemons} == set(DAEMONS), kids
            [self.sandbox_dir] = self.tmpdir.glob("ovstop-sandbox-*")
        except BaseException:
            self.tmux.close()  # a run that never came up must not outlive the test (the app exits on SIGHUP)
            raise

    def assert_nothing_left(self) -> None:
        _wait_gone({self.pid, *self.daemons})
        assert not list(self.tmpdir.glob("ovstop-sandbox-*")), "the sandbox directory was left behind"


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    r = Run(tmp_path)
    try:
        yield r
    finally:
        r.tmux.close()


def test_live_numbers_keys_and_a_clean_quit(run: Run) -> None:
    tmux = run.tmux
    first = run.first
    # numbers change: the snapshot number advances and the headline rates move with the traffic
    later = tmux.wait(lambda s: _seq(s) >= _seq(first) + 2 and _rates(s) not in ("", _rates(first)), "changing rates")
    assert re.search(r"dp hit [\d.]+k?/s", later) and "unixctl up" in later

    tmux.keys("?")
    tmux.wait(lambda s: "ovstop keys" in s and "Pause view" in s, "the help screen")
    tmux.keys("Escape")
    tmux.wait(lambda s: "ovstop keys" not in s, "the help screen closed")
    tmux.keys("h")
    tmux.wait(lambda s: "health checks" in s and "ok" in s and "failing" in s, "the health check list")
    tmux.keys("Escape")
    tmux.wait(lambda s: "health checks" not in s, "the health check list closed")
    # a real failure: BFD without a peer takes a tunnel down; the header shows it as a badge
    subprocess.run(
        ["ovs-vsctl", f"--db=unix:{run.sandbox_dir / 'db.sock'}", "set", "Interface", "geneve0", "bfd:enable=true"],
        check=True,
        capture_output=True,
        timeout=10,
    )
    tmux.wait(lambda s: "✗ tunnel_down" in s, "the tunnel_down badge")
    tmux.keys("6")
    tmux.wait(
        lambda s: "6 drops" in s and "of_pipeline" in s and "coverage/show drop_action" in s,
        "the drops pane with the sandbox's pipeline drops",
    )
    tmux.keys("4")
    tmux.wait(lambda s: "4 flow lookup" in s and re.search(r"│ 1 +[\d.]", s), "the flow pane with flows")
    tmux.keys("Enter")
    tmux.wait(lambda s: "datapath flow" in s and "tables traversed" in s, "the flow detail with its explanation")
    tmux.keys("Escape")
    tmux.wait(lambda s: "4 flow lookup" in s and "datapath flow " not in s, "the flow pane again")
    tmux.keys("b", "b")
    viewing = tmux.wait(lambda s: re.search(r"viewing \d\d:\d\d:\d\d, \S+ ago", s), "the time scrub badge")
    time.sleep(2.5)  # the view stays in the past while collection goes on (interval 1 s)
    assert _seq(tmux.screen()) == _seq(viewing)
    tmux.keys("t")
    tmux.wait(lambda s: "viewing" not in s and _seq(s) > _seq(viewing), "the view back to now")
    tmux.keys("2")
    tmux.wait(lambda s: "2 histograms" in s and "1 metrics" not in s, "the histograms pane alone")
    tmux.keys("p")
    paused = tmux.wait(lambda s: "PAUSED" in s, "the PAUSED badge")
    time.sleep(2.5)  # a paused view must not move although collection goes on (interval 1 s)
    assert _seq(tmux.screen()) == _seq(paused)
    tmux.keys("p")
    tmux.wait(lambda s: "PAUSED" not in s and _seq(s) > _seq(paused), "the view moving again")

    tmux.keys("q")
    deadline = time.monotonic() + 30
    while not run.status.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run.status.read_text().strip() == "EXIT=0"
    run.assert_nothing_left()


def test_terminal_going_away_leaves_nothing_behind(run: Run) -> None:
    assert run.sandbox_dir.is_dir() and _alive({run.pid, *run.daemons}) == {run.pid, *run.daemons}
    run.tmux.kill_session()  # the pty closes: SIGHUP to the app
    run.assert_nothing_left()


def test_event_detail_of_a_recorded_capture(tmp_path: Path) -> None:
    """Pane 3's Enter on an eBPF event (a real capture from the Debian 12 guest: the sandbox has no kernel
    hooks), the detail's fields and correlated events, and escape back to the pane."""
    recording = Path(__file__).parent / "data" / "recordings" / "guest-ebpf.jsonl"
    status = tmp_path / "exit-status"
    tmux = Tmux(f"{shlex.quote(str(OVSTOP))} --replay {shlex.quote(str(recording))}; echo EXIT=$? > {status}")
    try:
        tmux.keys("3")
        tmux.wait(lambda s: "3 upcall events" in s and "flow_lookup" in s, "pane 3 with the recording's events")
        tmux.keys("Enter")
        tmux.wait(
            lambda s: re.search(r"\w+ event  \(escape returns\)", s) and "event_type" in s and "correlated events" in s,
            "the event detail",
        )
        tmux.keys("Escape")
        tmux.wait(lambda s: "3 upcall events" in s and "escape returns" not in s, "pane 3 again")
        tmux.keys("q")
        deadline = time.monotonic() + 30
        while not status.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status.read_text().strip() == "EXIT=0"
    finally:
        tmux.close()
