"""Generated garbage on every input surface (hypothesis): CLI values, label files, replay files, HTTP requests,
unixctl and OVSDB replies. Each must end as one line (an error the user reads, or a source's health reason
and a parse-error count), a non-zero exit where the program stops, no traceback, and no file changed that
the user did not ask to change.

unixctl and OVSDB garbage cannot come from a real daemon: a scripted JSON-RPC peer on a unix socket (in
this file) answers ovstop's real clients with generated replies, mixed with recorded OVS 3.1 outputs
(tests/data/unixctl/ovs-3.1) cut and mangled.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ovs.poller
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from scripted_peer import peer
from serving import serving

from ovstop import cli
from ovstop.collect.base import Sources
from ovstop.collect.conntrack import ConntrackCollector
from ovstop.collect.coverage import CoverageCollector
from ovstop.collect.datapath import DatapathCollector
from ovstop.collect.flows import FlowsCollector
from ovstop.collect.memory import MemoryCollector
from ovstop.collect.pmd import PmdCollector
from ovstop.collect.rfc import RfcMetricsCollector
from ovstop.collect.sampler import Sampler
from ovstop.collect.upcall import UpcallCollector
from ovstop.errors import OvstopError, SourceError
from ovstop.export.prometheus import render
from ovstop.model.labels import LabelMap
from ovstop.model.store import Snapshot
from ovstop.runtime import Options, running
from ovstop.sandbox.switch import SandboxSwitch
from ovstop.sources.ovsdb import OvsdbSource
from ovstop.sources.ovsdb_counters import CounterMonitor
from ovstop.sources.unixctl import UnixctlClient
from ovstop.tui.feed import REPLAY, ReplayFeed

RECORDED = Path(__file__).parent / "data" / "unixctl" / "ovs-3.1"
QUICK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def one_line(text: str) -> bool:
    return bool(text) and "\n" not in text.strip() and "Traceback" not in text


def tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under ``root`` with its mode, size and mtime: what "no file changed" compares."""
    return {
        str(p.relative_to(root)): (p.lstat().st_mode, p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")
    }


# -- generators -----------------------------------------------------------------------------------------------
def _mangle(text: str, data: st.DataObject) -> str:
    """A recorded output cut at a random place, or with one stretch replaced by generated text."""
    a = data.draw(st.integers(0, len(text)))
    b = data.draw(st.integers(a, min(len(text), a + 40)))
    return text[:a] + data.draw(st.text(max_size=20)) + (text[b:] if data.draw(st.booleans()) else "")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def replies(draw: st.DrawFn) -> list[Any]:
    """A script for :class:`ScriptedPeer`: what to answer to each successive request."""
    recorded = sorted(RECORDED.glob("*.txt"))
    out = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["mangled", "text", "json", "error", "raw", "silent", "close", "nested"]))
        if kind == "mangled":
            text = draw(st.sampled_from(recorded)).read_text()
            out.append(("result", _mangle(text, draw(st.data()))))
        elif kind == "text":
            out.append(("result", draw(st.text(max_size=300))))
        elif kind == "json":
            out.append(("result", draw(json_values)))
        elif kind == "error":
            out.append(("error", draw(json_values)))
        elif kind == "raw":
            out.append(("raw", draw(st.binary(max_size=200))))
        elif kind == "nested":
            out.append(("raw", b'{"id":0,"result":' + b"[" * 50_000))
        else:
            out.append((kind, None))
    return out


def check_page(snapshot: Snapshot) -> None:
    """The page built from whatever was collected still parses as Prometheus text."""
    text = render(snapshot, generate_latest).decode()
    assert list(text_string_to_metric_families(text))


# -- unixctl and OVSDB replies ---------------------------------------------------------------------------------
@QUICK
@given(script=replies())
@example(script=[("error", "0\n0")])  # an error text of two lines (found by hypothesis)
def test_unixctl_garbage_marks_the_source_not_the_round(
    tmp_path_factory: pytest.TempPathFactory, script: list[Any]
) -> None:
    tmp = tmp_path_factory.getbasetemp()
    with peer(tmp, script) as path:
        client = UnixctlClient(path, timeout=0.1, backoff_initial=0.0, backoff_max=0.0)
        collectors = [
            RfcMetricsCollector(),
            DatapathCollector(),
            PmdCollector(),
            UpcallCollector(),
            FlowsCollector(max_flows=100),
            ConntrackCollector(),
            MemoryCollector(),
            CoverageCollector(),
        ]
        sampler = Sampler(Sources(unixctl=client), collectors, round_timeout=0.3)
        try:
            for _ in range(2):
                snap = sampler.sample()
                health = snap.health["unixctl"]
                assert health.up or health.reason  # down always says why
                if health.reason:
                    assert one_line(health.reason)
                check_page(snap)
        finally:
            client.close()


@QUICK
@given(script=replies())
def test_ovsdb_garbage_is_a_source_error(tmp_path_factory: pytest.TempPathFactory, script: list[Any]) -> None:
    tmp = tmp_path_factory.getbasetemp()
    with peer(tmp, script) as path:
        source = OvsdbSource(f"unix:{path}", timeout=0.1)
        sampler = Sampler(Sources(ovsdb=source), [], round_timeout=0.3)
        try:
            snap = sampler.sample()
            assert "ovsdb" not in snap.health or one_line(snap.health["ovsdb"].reason)
            with contextlib.suppress(OvstopError):
                source.rows("Interface")
        finally:
            source.close()


MONITOR_ID = "ovstop-test-monitor"
ROW_UUIDS = ["0b8b7f6e-0000-4000-8000-000000000001", "0b8b7f6e-0000-4000-8000-000000000002"]
stat_maps = st.lists(
    st.tuples(st.sampled_from(["rx_packets", "tx_bytes"]) | st.text(max_size=6), st.integers(-(2**70), 2**70)).map(
        list
    ),
    max_size=3,
).map(lambda pairs: ["map", pairs])
row_changes = st.one_of(
    st.builds(lambda op, m: {op: {"statistics": m}}, st.sampled_from(["initial", "insert", "modify"]), stat_maps),
    st.sampled_from([{"modify": {}}, {"delete": None}, {"delete": {}}, {"initial": {}}]),
)
row_updates = st.dictionaries(st.sampled_from(ROW_UUIDS) | st.text(max_size=4), row_changes, min_size=1, max_size=3)
table_updates2 = st.one_of(
    st.builds(lambda rows: {"Interface": rows}, row_updates),
    st.builds(lambda rows: {"Interface": rows}, row_updates),
    st.dictionaries(st.sampled_from(["Interface"]) | st.text(max_size=6), row_updates, max_size=2),
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield from _paths(inner, (*path, key))


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new) if len(path) > 1 else new  # a key may be new
    return copy


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@st.composite
def near_updates(draw: st.DrawFn) -> Any:
    """A ``<table-updates2>`` of Interface statistics, valid or with one part replaced by generated JSON or one
    key added (an unknown op, a second op on a row, a non-int value, a list where a map goes...)."""
    doc = draw(table_updates2)
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            doc = _replaced(doc, draw(st.sampled_from(list(_paths(doc)))), draw(json_values))
        elif dicts := [p for p in _paths(doc) if isinstance(_at(doc, p), dict)]:
            doc = _replaced(doc, (*draw(st.sampled_from(dicts)), draw(st.text(max_size=6))), draw(json_values))
    return doc


@st.composite
def counter_scripts(draw: st.DrawFn) -> list[Any]:
    """The monitor request's answer: a near-valid reply followed by update2 notifications (also near-valid,
    some for another monitor), or garbage; then what later connections get."""
    if draw(st.integers(0, 3)):
        notifications = [
            {
                "id": None,
                "method": draw(st.sampled_from(["update2", "update2", "update", "locked"])),
                "params": draw(
                    st.builds(lambda doc, mid: [mid, doc], near_updates(), st.sampled_from([MONITOR_ID, "other"]))
                    | json_values
                ),
            }
            for _ in range(draw(st.integers(0, 3)))
        ]
        first = [("then", (draw(near_updates()), notifications))]
    else:
        first = draw(replies())[:1]
    return first + draw(replies())[:2]


def check_counters(monitor: CounterMonitor) -> None:
    maps = monitor.counters("Interface")
    assert all(type(row) is str and type(m) is dict for row, m in maps.items())
    assert all(type(k) is str and type(v) is int for m in maps.values() for k, v in m.items())


@QUICK
@given(script=counter_scripts())
@example(script=[("then", ({"Interface": {ROW_UUIDS[0]: {"modify": {"statistics": ["map", [["a", 1]]]}}}}, []))])
@example(script=[("then", ({"Interface": {"x\ny": {"bogus": {}}}}, []))])
@example(script=[("error", "no\nsuch database")])  # found by this test: both came back with their newline
@example(script=[("then", ({"Interface": {ROW_UUIDS[0]: {"initial": {"statistics": ["map", [["rx", 1.5]]]}}}}, []))])
@example(
    script=[
        (
            "then",
            (
                {"Interface": {ROW_UUIDS[0]: {"initial": {"statistics": ["map", [["rx_packets", 1]]]}}}},
                [
                    {"id": None, "method": "update2", "params": [MONITOR_ID, {"Interface": {ROW_UUIDS[1]: update}}]}
                    for update in ({"modify": {"statistics": ["map", [["rx", True]]]}}, {"delete": None})
                ],
            ),
        )
    ]
)
def test_counter_monitor_garbage_is_a_source_error(tmp_path_factory: pytest.TempPathFactory, script: list[Any]) -> None:
    """The counter monitor against generated answers: it becomes ready with maps of str -> int, or raises a
    SourceError in one line; nothing else."""
    tmp = tmp_path_factory.getbasetemp()
    with peer(tmp, script) as path:
        monitor = CounterMonitor(f"unix:{path}", "Open_vSwitch", {"Interface": "statistics"})
        monitor._monitor_id = MONITOR_ID  # so that the scripted notifications are for this monitor
        try:
            for _ in range(30):
                try:
                    monitor.run()
                except SourceError as exc:
                    assert one_line(str(exc)), str(exc)
                    break
                if monitor.ready:
                    check_counters(monitor)
                poller = ovs.poller.Poller()
                monitor.wait(poller)
                poller.timer_wait(10)
                poller.block()
        finally:
            monitor.close()


def test_a_refused_counter_monitor_is_said_again_each_round(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A server that answers the monitor request with an error: every later round says why, in one line, until
    a new connection asks again (not a monitor that quietly never becomes ready)."""
    with peer(tmp_path_factory.getbasetemp(), [("error", "unknown method\nmonitor_cond")]) as path:
        monitor = CounterMonitor(f"unix:{path}", "Open_vSwitch", {"Interface": "statistics"})
        try:
            reasons = []
            deadline = time.monotonic() + 10
            while len(reasons) < 3:
                assert time.monotonic() < deadline, f"the monitor said why only {len(reasons)} times"
                try:
                    monitor.run()
                except SourceError as exc:
                    reasons.append(str(exc))
                poller = ovs.poller.Poller()
                monitor.wait(poller)
                poller.timer_wait(10)
                poller.block()
            assert not monitor.ready
            assert len(set(reasons)) == 1 and one_line(reasons[0]) and "refused" in reasons[0], reasons
        finally:
            monitor.close()


def test_a_counter_update_read_in_part_starts_the_monitor_over(tmp_path_factory: pytest.TempPathFactory) -> None:
    """An update that cannot be read after a good initial reply: the error is one line, and the monitor does
    not go on from maps it applied in part; it connects again and serves the new connection's contents."""
    first = {"Interface": {"a": {"initial": {"statistics": ["map", [["rx_packets", 1]]]}}}}
    unreadable = {"id": None, "method": "update2", "params": [MONITOR_ID, {"Interface": {"a": {"modify": 7}}}]}
    second = {"Interface": {"b": {"initial": {"statistics": ["map", [["tx_packets", 2]]]}}}}
    with peer(tmp_path_factory.getbasetemp(), [("then", (first, [unreadable])), ("result", second)]) as path:
        monitor = CounterMonitor(f"unix:{path}", "Open_vSwitch", {"Interface": "statistics"})
        monitor._monitor_id = MONITOR_ID  # so that the scripted notification is for this monitor
        try:
            errors = []
            deadline = time.monotonic() + 10
            while not (errors and monitor.ready):
                assert time.monotonic() < deadline, f"errors {errors}, ready {monitor.ready}"
                try:
                    monitor.run()
                except SourceError as exc:
                    errors.append(str(exc))
                    assert not monitor.ready and not monitor.counters("Interface")
                poller = ovs.poller.Poller()
                monitor.wait(poller)
                poller.timer_wait(10)
                poller.block()
            assert len(errors) == 1 and one_line(errors[0]), errors
            assert monitor.counters("Interface") == {"b": {"tx_packets": 2}}
        finally:
            monitor.close()


# -- label files ----------------------------------------------------------------------------------------------
toml_scalars = (
    st.integers(-(2**63), 2**63 - 1).map(str)
    | st.floats().map(repr)
    | st.text(max_size=12).map(json.dumps)
    | st.sampled_from(["true", "false", "1.9e400", "nan"])
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda v: f"[{', '.join(v)}]")
        | st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), inner, max_size=3).map(
            lambda d: "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"
        )
    ),
    max_leaves=8,
)
label_keys = st.sampled_from(["names", "max_values", "external_ids", "rule", "labels", "interface", "vpc", "x"])


@st.composite
def label_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "toml", "toml"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    lines = [draw(st.sampled_from(["[labels]", "[[labels.rule]]", "[other]", ""]))]
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 5)) == 0:
            lines.append(draw(st.sampled_from(["[labels]", "[[labels.rule]]", "[labels.external_ids]"])))
        lines.append(f"{draw(label_keys)} = {draw(toml_values)}")
    return "\n".join(lines).encode()


@settings(max_examples=300, deadline=None)
@given(content=label_files())
def test_label_files_load_or_fail_in_one_line(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    path = tmp_path_factory.mktemp("labels") / "labels.toml"
    path.write_bytes(content)
    try:
        label_map = LabelMap.load(path)
    except OvstopError as exc:
        assert one_line(str(exc)) and str(path) in str(exc)
        return
    # What loads gives Prometheus-valid, non-reserved names and bounded values for any object.
    labels = label_map.labels_for("p1", "p1", "br0", ({"vpc": "a", "x": "b"},), "ls")
    assert set(labels) == set(label_map.names)
    assert all(not n.startswith("__") and n not in ("le", "quantile") for n in labels)


# -- replay files ---------------------------------------------------------------------------------------------
@st.composite
def replay_files(draw: st.DrawFn) -> bytes:
    startup = {"common": {"timestamp": 1}, "startup": {"retis_version": "v1.7.0"}}
    lines = [json.dumps(startup)] if draw(st.booleans()) else []
    for i in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["event", "snapshot", "json", "text", "truncated", "nested", "array"]))
        ts = {"timestamp": 1000 + i}
        if kind == "event":
            ovs = {"event_type": draw(st.sampled_from(["upcall", "upcall_return", "flow_lookup", "bogus"]))}
            ovs.update(
                draw(
                    st.dictionaries(
                        st.sampled_from(["port", "cpu", "cmd", "ufid", "queue_id"]), json_values, max_size=3
                    )
                )
            )
            lines.append(json.dumps({"common": ts, "ovs": ovs}))
        elif kind == "snapshot":
            data = draw(
                st.dictionaries(
                    st.sampled_from(["format", "version", "seq", "series", "specs", "health"]), json_values, max_size=6
                )
            )
            lines.append(json.dumps({"common": ts, "ovstop": {"kind": "snapshot", "data": data}}))
        elif kind == "json":
            lines.append(json.dumps(draw(json_values)))
        elif kind == "text":
            lines.append(draw(st.text(max_size=50)).replace("\n", " "))
        elif kind == "truncated":
            lines.append(json.dumps({"common": ts, "ovs": {"event_type": "upcall"}})[: draw(st.integers(1, 30))])
        elif kind == "nested":
            lines.append("[" * 50_000)
        else:
            lines.append(json.dumps([draw(json_values), {"common": ts}]))
    return ("\n".join(lines) + "\n").encode()


@settings(max_examples=150, deadline=None)
@given(content=replay_files())
def test_replay_files_play_or_stop_with_a_reason(tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
    path = tmp_path_factory.mktemp("replay") / "file.jsonl"
    path.write_bytes(content)
    try:
        feed = ReplayFeed(str(path), speed=float("inf"))
    except OvstopError as exc:
        assert one_line(str(exc))
        return
    got: list[Snapshot] = []
    feed._deliver = got.append
    feed._run()  # on this thread: anything it does not handle fails the test here
    if REPLAY in (got[-1].health if got else {}):
        assert one_line(got[-1].health[REPLAY].reason)
    assert feed.replayer.done or (got and REPLAY in got[-1].health)
    assert path.read_bytes() == content


# -- CLI values -----------------------------------------------------------------------------------------------
VALUE_FLAGS = [
    "-d",
    "--timeout",
    "--max-age",
    "--max-flows",
    "--sandbox-ports",
    "--traffic",
    "--listen",
    "--labels",
    "--db",
    "--ovn-nb",
    "--ovn-sb",
    "-o",
    "--record",
    "--replay",
    "--unixctl",
]
cli_values = (
    st.text(max_size=20)
    | st.floats().map(repr)
    | st.integers().map(str)
    | st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e400",
            "-0",
            "0x10",
            " 1",
            "",
            "-",
            "/",
            ".",
            "..",
            "/dev/null",
            "/dev/full",
            "[::1]:80",
            ":",
            "unix:",
            "tcp:1.2.3.4:x",
        ]
    )
)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``ovstop ARGV`` in this process: (exit status, stdout, stderr); its signal handlers are put back."""
    out, err = io.StringIO(), io.StringIO()
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main(argv)
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    return rc, out.getvalue(), err.getvalue()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.lists(st.tuples(st.sampled_from(VALUE_FLAGS), cli_values), min_size=1, max_size=4))
@example(args=[("--unixctl", "\n")])  # found by this test: the path came back inside the error, newline and all
@example(args=[("--labels", "a\nb")])
def test_cli_values_fail_in_one_line(tmp_path: Path, args: list[tuple[str, str]]) -> None:
    before = tree(tmp_path)
    cwd = os.getcwd()
    os.chdir(tmp_path)  # relative paths land here; the switch never exists, so nothing may be written
    try:
        argv = ["snapshot", *[part for flag, value in args for part in (flag, value)]]
        if "--unixctl" not in argv:
            argv += ["--unixctl", "/nonexistent/ovs-vswitchd.1.ctl"]
        rc, out, err = run_cli(argv)
    finally:
        os.chdir(cwd)
    assert rc != 0 and out == ""
    assert one_line(err) and err.startswith("ovstop: "), err
    assert tree(tmp_path) == before


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(["--db", "--ovn-nb", "--ovn-sb"]), value=cli_values)
def test_cli_remotes_against_a_real_switch(sandbox: SandboxSwitch, tmp_path: Path, flag: str, value: str) -> None:
    """A garbage remote: snapshot still works from what answers (rc 0, JSON), or fails in one line."""
    before = tree(tmp_path)
    argv = ["snapshot", "--unixctl", str(sandbox.unixctl_path), "--no-ebpf", "-d", "0.01", "--timeout", "0.5"]
    if flag != "--db":
        argv += ["--db", sandbox.db_remote]
    rc, out, err = run_cli([*argv, flag, value])
    if rc == 0:
        assert json.loads(out)["format"] == "ovstop-snapshot"
    else:
        assert one_line(err) and err.startswith("ovstop: "), err
    assert "Traceback" not in err
    assert tree(tmp_path) == before


# -- HTTP requests --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def endpoint_port(sandbox: SandboxSwitch) -> Iterator[int]:
    options = Options(unixctl=str(sandbox.unixctl_path), db=sandbox.db_remote, ebpf=False)
    with running(options) as rt:
        rt.first_sample()
        with serving(rt.sampler, interval=3600) as (_, server):  # one round serves every example
            yield server.server_port


header_names = st.sampled_from(
    ["Accept", "Accept-Encoding", "X-Prometheus-Scrape-Timeout-Seconds", "Host", "Content-Length", "Range", "X-Junk"]
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40) | st.sampled_from(
    ["nan", "-1", "0", "1e400", "application/openmetrics-text; version=1.0.0", "gzip", "*/*;q=0.5, text/plain"]
)


@settings(max_examples=100, deadline=None)
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "BREW", "get"]),
    path=st.sampled_from(["/metrics", "/", "/../etc/passwd", "/metrics?x=1", "//metrics", "/%00", "/metrics/"])
    | st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=30).map(lambda p: "/" + p),
    headers=st.dictionaries(header_names, header_values, max_size=4),
)
def test_http_requests_never_make_a_server_error(
    endpoint_port: int, method: str, path: str, headers: dict[str, str]
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", endpoint_port, timeout=30)
    try:
        conn.request(method, path, headers=headers)
        status = conn.getresponse().status
    except (http.client.HTTPException, ConnectionError):
        status = 0  # a request line the server refused to read: it hung up, which is fine
    finally:
        conn.close()
    assert status != 500
    healthy = http.client.HTTPConnection("127.0.0.1", endpoint_port, timeout=30)
    healthy.request("GET", "/metrics")
    assert healthy.getresponse().status == 200
    healthy.close()


@settings(max_examples=50, deadline=None)
@given(raw=st.binary(max_size=300))
def test_raw_bytes_on_the_http_port(endpoint_port: int, raw: bytes) -> None:
    with socket.create_connection(("127.0.0.1", endpoint_port), timeout=30) as sock, contextlib.suppress(OSError):
        sock.sendall(raw + b"\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        answer = sock.recv(64)
        assert not answer.startswith(b"HTTP/1.0 500") and not answer.startswith(b"HTTP/1.1 500")
