"""The exporter's HTTP layer under real clients: TLS and basic auth (curl, Python's ssl), methods, HEAD,
timeouts, the connection bound and the listen backlog (read from the kernel with ``ss``)."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import bcrypt
import pytest

from ovstop.errors import OvstopError
from ovstop.export import webconfig
from ovstop.export.httpd import MAX_HEAD, Limits, Request, Response, Server, serve_app
from ovstop.export.server import exposed_without_protection
from ovstop.sandbox.switch import SandboxSwitch

PASSWORD = "s3cret pass"
BODY = b"ovstop_test 1\n" * 100


def app(request: Request) -> Response:
    return Response(200, (("Content-Type", "text/plain; version=0.0.4"),), BODY)


@contextmanager
def running(web_config: webconfig.WebConfig | None = None, **limits: float) -> Iterator[Server]:
    server = serve_app(app, "127.0.0.1", 0, web_config, Limits(**limits))  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def wait_closed(sock: socket.socket, deadline: float = 20.0) -> bytes:
    """Read until the server closes the connection (b'' from recv); what it sent before closing."""
    sock.settimeout(deadline)
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed certificate for localhost/127.0.0.1 (made by openssl) and a web config using it."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            d / "key.pem",
            "-out",
            d / "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=8)).decode()
    # Relative paths: exporter-toolkit reads them relative to the config file.
    (d / "web.yml").write_text(
        f"tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  prometheus: {hashed}\n"
    )
    (d / "auth-only.yml").write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    return d


def curl(*args: str) -> tuple[int, str]:
    """HTTP status (0 when there was no HTTP answer) and body, from the curl binary."""
    out = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", "--max-time", "20", *args], capture_output=True, text=True
    )
    body, _, code = out.stdout.rpartition("\n")
    return int(code or 0), body


# --- methods, HEAD, banner ---------------------------------------------------------------------------


def test_other_methods_get_405_with_allow() -> None:
    with running() as server:
        for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"):
            conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=20)
            conn.request(method, "/metrics", body=b"x=1")
            response = conn.getresponse()
            assert response.status == 405, method
            assert response.getheader("Allow") == "GET, HEAD"
            conn.close()


def test_head_has_get_headers_and_no_body_and_no_banner() -> None:
    with running() as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=20)
        conn.request("HEAD", "/metrics")
        head = conn.getresponse()
        assert head.read() == b""
        assert head.getheader("Content-Length") == str(len(BODY))
        assert head.getheader("Server") is None
        # Same kept-alive connection: had HEAD sent a body, this response would not parse.
        conn.request("GET", "/metrics")
        get = conn.getresponse()
        assert get.status == 200 and get.read() == BODY
        assert "python" not in str(get.headers).lower()
        conn.close()


def test_an_endpoint_bug_is_a_500_and_the_server_goes_on(capfd: pytest.CaptureFixture[str]) -> None:
    def broken(request: Request) -> Response:
        raise RuntimeError("boom")

    server = serve_app(broken, "127.0.0.1", 0)
    try:
        for _ in range(2):
            conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=20)
            conn.request("GET", "/metrics")
            assert conn.getresponse().status == 500
            conn.close()
    finally:
        server.shutdown()
        server.server_close()
    err = capfd.readouterr().err
    assert err.count("internal error answering /metrics: RuntimeError('boom')") == 2 and "Traceback" not in err


# --- timeouts, bound, backlog --------------------------------------------------------------------------


def test_idle_connection_is_closed_after_idle_timeout() -> None:
    with running(idle_timeout=0.5) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=20)
        conn.request("GET", "/metrics")
        assert conn.getresponse().read() == BODY
        assert conn.sock is not None
        assert wait_closed(conn.sock) == b""  # kept alive, then closed by the server while idle
        silent = socket.create_connection(("127.0.0.1", server.server_port))
        assert wait_closed(silent) == b""  # connected and never sent anything
        silent.close()


def test_stalled_request_is_closed_after_read_timeout() -> None:
    with running(idle_timeout=60, read_timeout=0.5) as server:
        sock = socket.create_connection(("127.0.0.1", server.server_port))
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        assert b"200 OK" not in wait_closed(sock)
        sock.close()


def test_connections_beyond_the_bound_are_closed_at_once_and_slots_come_back() -> None:
    with running(max_connections=2, idle_timeout=60) as server:
        held = [socket.create_connection(("127.0.0.1", server.server_port)) for _ in range(2)]
        for sock in held:  # both are being served (one full request each) before the third arrives
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(20)
            assert sock.recv(12) == b"HTTP/1.1 200"
        extra = socket.create_connection(("127.0.0.1", server.server_port))
        assert wait_closed(extra) == b""
        extra.close()
        held.pop().close()
        deadline = time.monotonic() + 20
        while True:  # the slot is released when the server notices the close
            conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=20)
            try:
                conn.request("GET", "/metrics")
                if conn.getresponse().status == 200:
                    break
            except (ConnectionError, http.client.HTTPException):
                assert time.monotonic() < deadline, "the freed slot never came back"
                time.sleep(0.05)
            finally:
                conn.close()
        for sock in held:
            sock.close()


def test_the_default_bound_closes_the_513th_connection_and_serves_the_512() -> None:
    with running(idle_timeout=60) as server:
        held = [socket.create_connection(("127.0.0.1", server.server_port)) for _ in range(Limits().max_connections)]
        # The kernel hands connections over in order: the 513th is accepted after the 512 and closed at once.
        extra = socket.create_connection(("127.0.0.1", server.server_port))
        assert wait_closed(extra) == b""
        extra.close()
        for sock in (held[0], held[-1]):  # the first and the last of the 512 are served
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(20)
            assert sock.recv(12) == b"HTTP/1.1 200"
        for sock in held:
            sock.close()


def test_a_half_sent_request_does_not_delay_another_connection() -> None:
    with running(idle_timeout=60, read_timeout=60) as server:
        stalled = socket.create_connection(("127.0.0.1", server.server_port))
        stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and nothing more for a minute
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=20)
        conn.request("GET", "/metrics")
        assert conn.getresponse().read() == BODY
        conn.close()
        stalled.sendall(b"\r\n")  # the rest of it: answered on its connection
        stalled.settimeout(20)
        assert stalled.recv(12) == b"HTTP/1.1 200"
        stalled.close()


def test_an_answer_that_waits_does_not_hold_up_the_others() -> None:
    """An answer made on a worker thread (it waits for an event, as a scrape waits for a round) leaves the
    event loop serving other connections; it is sent once made, also to a client that half-closed."""
    release = threading.Event()

    def waiting_app(request: Request) -> Response | Callable[[], Response]:
        if request.path != "/slow":
            return Response(200, (), b"fast\n")

        def slow() -> Response:
            assert release.wait(60)
            return Response(200, (), b"slow\n")

        return slow

    server = serve_app(waiting_app, "127.0.0.1", 0)
    try:
        slow = socket.create_connection(("127.0.0.1", server.server_port))
        slow.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        slow.shutdown(socket.SHUT_WR)  # half-closed, as `nc -N` does: the answer is still owed
        for _ in range(3):
            conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=20)
            conn.request("GET", "/fast")
            assert conn.getresponse().read() == b"fast\n"
            conn.close()
        slow.setblocking(False)
        with pytest.raises(BlockingIOError):
            slow.recv(1)  # still nothing: its answer waits for the event
        release.set()
        assert wait_closed_or(slow, b"slow\n")
        assert wait_closed(slow) == b""  # then closed: it was the client's last request
        slow.close()
    finally:
        server.shutdown()
        server.server_close()


def wait_closed_or(sock: socket.socket, ending: bytes) -> bool:
    """Read until what was received ends with ``ending`` (True) or the server closes (False)."""
    sock.settimeout(20)
    data = b""
    while not data.endswith(ending):
        chunk = sock.recv(4096)
        if not chunk:
            return False
        data += chunk
    return True


def test_a_malformed_or_oversized_request_head_is_refused_and_closed() -> None:
    with running() as server:
        for request, status in (
            (b"GET /metrics\r\n\r\n", b"HTTP/1.1 400"),  # no version
            (b"GET /metrics HTTP/1.1\r\n folded: header\r\n\r\n", b"HTTP/1.1 400"),
            (b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * (MAX_HEAD + 1), b"HTTP/1.1 431"),  # never ends
        ):
            sock = socket.create_connection(("127.0.0.1", server.server_port))
            sock.sendall(request)
            assert wait_closed(sock).startswith(status), request[:30]
            sock.close()


def test_pipelined_requests_are_answered_in_order() -> None:
    with running() as server:
        sock = socket.create_connection(("127.0.0.1", server.server_port))
        sock.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_closed_or(sock, BODY)
        sock.close()


def test_a_client_that_does_not_read_its_answer_is_dropped_after_the_read_timeout() -> None:
    big = b"x" * (16 << 20)

    def big_app(request: Request) -> Response:
        return Response(200, (), big)

    server = serve_app(big_app, "127.0.0.1", 0, limits=Limits(read_timeout=0.5))
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.server_port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(20)
        assert sock.recv(12) == b"HTTP/1.1 200"  # being answered
        # Not reading on: the server's send buffer fills, and after the read timeout it drops the connection.
        # Then reading gets what the kernel held and an end (EOF or reset), never the whole answer.
        deadline = time.monotonic() + 30
        while server.connections:
            assert time.monotonic() < deadline, "the server kept a client that does not read"
            time.sleep(0.05)
        received = 0
        try:
            while chunk := sock.recv(1 << 16):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < len(big)
        sock.close()
    finally:
        server.shutdown()
        server.server_close()


def test_tls_port_closes_a_silent_client_and_a_stalled_handshake(tls_files: Path) -> None:
    config = webconfig.load(str(tls_files / "web.yml"))
    with running(config, read_timeout=0.5) as server:
        silent = socket.create_connection(("127.0.0.1", server.server_port))
        assert wait_closed(silent) == b""
        silent.close()
        stalled = socket.create_connection(("127.0.0.1", server.server_port))
        stalled.sendall(b"\x16\x03\x01")  # the start of a TLS record, then nothing
        with contextlib.suppress(ConnectionResetError):  # an aborted handshake may end in a reset
            assert wait_closed(stalled) == b""
        stalled.close()


def test_listen_backlog_seen_by_the_kernel() -> None:
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    with running() as server:
        out = subprocess.run(
            ["ss", "-ltnH", f"sport = :{server.server_port}"], capture_output=True, text=True, check=True
        ).stdout
        # For a listening socket ss's Send-Q is the backlog the kernel applies.
        backlog = int(out.split()[2])
        assert backlog == min(Limits().backlog, somaxconn)
        assert backlog >= 128


# --- TLS and basic auth ------------------------------------------------------------------------------


def test_tls_and_basic_auth_with_curl(tls_files: Path) -> None:
    config = webconfig.load(str(tls_files / "web.yml"))
    with running(config) as server:
        url = f"https://localhost:{server.server_port}/metrics"
        ca = ["--cacert", str(tls_files / "cert.pem")]
        assert curl(*ca, "-u", f"prometheus:{PASSWORD}", url) == (200, BODY.decode())
        assert curl(*ca, "-u", "prometheus:wrong", url)[0] == 401
        assert curl(*ca, "-u", f"nobody:{PASSWORD}", url)[0] == 401
        assert curl(*ca, url)[0] == 401
        # Not trusting the self-signed certificate: curl refuses (no HTTP answer at all).
        assert curl("-u", f"prometheus:{PASSWORD}", url)[0] == 0
        # Plain HTTP to the TLS port: the Go exporters' hint, never the metrics.
        code, body = curl(f"http://127.0.0.1:{server.server_port}/metrics")
        assert code == 400 and "HTTPS" in body and "ovstop_test" not in body


def test_tls_and_basic_auth_with_python_ssl(tls_files: Path) -> None:
    config = webconfig.load(str(tls_files / "web.yml"))
    context = ssl.create_default_context(cafile=str(tls_files / "cert.pem"))
    with running(config) as server:
        url = f"https://localhost:{server.server_port}/metrics"
        auth = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        auth.add_password(None, url, "prometheus", PASSWORD)
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), urllib.request.HTTPBasicAuthHandler(auth)
        )
        with opener.open(url, timeout=20) as response:
            assert response.status == 200 and response.read() == BODY
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, context=context, timeout=20)
        assert refused.value.code == 401
        assert refused.value.headers["WWW-Authenticate"] == 'Basic realm="ovstop"'


def test_unreadable_web_config_paths_are_one_line() -> None:
    for path, message in (("/nonexistent/web.yml", "No such file"), ("/etc", "Is a directory"), ("a\0b", "NUL byte")):
        with pytest.raises(OvstopError, match=message) as refused:
            webconfig.load(path)
        assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tls_server_config:\n  cert_file: c.pem\n  key_fil: k.pem\n", "unknown or unsupported key 'key_fil'"),
        ("basic_auth_users:\n  bob: plain-password\n", "not a bcrypt hash"),
        ("tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.pem\n", "cannot load"),
        ("tls_server_config: [\n", "not valid YAML"),
        ("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: SSL3\n", "expected TLS12 or TLS13"),
    ],
)
def test_bad_web_config_is_one_line_and_exit_1(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text)
    out = subprocess.run(
        [sys.executable, "-m", "ovstop", "--headless", "--listen", "127.0.0.1:0", "--web.config.file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and message in out.stderr, out.stderr


def test_warning_only_when_exposed_without_tls_or_auth(tls_files: Path) -> None:
    full = webconfig.load(str(tls_files / "web.yml"))
    auth_only = webconfig.load(str(tls_files / "auth-only.yml"))
    assert exposed_without_protection("127.0.0.1", webconfig.WebConfig()) is None
    assert exposed_without_protection("::1", webconfig.WebConfig()) is None
    assert exposed_without_protection("0.0.0.0", full) is None
    assert "without TLS" in (exposed_without_protection("0.0.0.0", auth_only) or "")
    assert "without TLS or authentication" in (exposed_without_protection("::", webconfig.WebConfig()) or "")


@pytest.mark.skipif(shutil.which("ovs-vswitchd") is None, reason="needs Open vSwitch")
def test_headless_on_all_addresses_with_web_config(sandbox: SandboxSwitch, tls_files: Path) -> None:
    """The real ``ovstop --headless``: https with auth, and the warning when exposed without them."""

    def start(*extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ovstop",
                "--headless",
                "--listen",
                "0.0.0.0:0",
                "--db",
                sandbox.db_remote,
                "--no-ebpf",
                *extra,
            ],
            env={**os.environ, **sandbox.env},
            stderr=subprocess.PIPE,
            text=True,
        )

    proc = start("--web.config.file", str(tls_files / "web.yml"))
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"https://0\.0\.0\.0:(\d+)/metrics", line)
        assert match, line
        url = f"https://127.0.0.1:{match.group(1)}/metrics"
        code, body = curl("--cacert", str(tls_files / "cert.pem"), "-u", f"prometheus:{PASSWORD}", url)
        assert code == 200 and 'ovstop_source_up{source="unixctl"} 1.0' in body
        assert curl("--cacert", str(tls_files / "cert.pem"), url)[0] == 401
    finally:
        proc.terminate()
        assert "warning" not in proc.communicate(timeout=30)[1]
    proc = start()
    try:
        assert proc.stderr is not None
        assert "http://0.0.0.0:" in proc.stderr.readline()
        assert "warning: listening on 0.0.0.0 without TLS or authentication" in proc.stderr.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
