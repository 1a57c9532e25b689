"""Command line: ``ovstop`` (TUI), ``ovstop --headless``, ``ovstop snapshot``, ``ovstop --check``.

Every failure the user can cause or meet (no switch, a bad flag value, a port in use, no permission)
ends as one line on stderr and a non-zero exit; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import os
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

from ovstop import __version__, fileio, logs, signals
from ovstop.collect.demand import EVERYTHING, METRICS
from ovstop.errors import OvstopError, describe
from ovstop.events.recording import DEFAULT_KEEP, OVERWRITE_HINT, check_rotation
from ovstop.export.server import DEFAULT_PORT
from ovstop.runtime import Options

if TYPE_CHECKING:
    from ovstop.remote.fleet import Fleet

EXIT_ERROR = 1
EXIT_USAGE = 2
MAX_SANDBOX_PORTS = 4096


class _Parser(argparse.ArgumentParser):
    """argparse with ovstop's error form: one line on stderr (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ovstop: {' '.join(message.split())} (see ovstop --help)\n")


def _number(kind: type[int] | type[float], minimum: float, maximum: float = math.inf) -> Callable[[str], Any]:
    """An argparse type: a finite ``kind`` within [minimum, maximum] (NaN and infinities refused)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if not (math.isfinite(value) and minimum <= value <= maximum):
            upper = f" and at most {maximum:g}" if math.isfinite(maximum) else ""
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum:g}{upper}")
        return value

    parse.__name__ = kind.__name__
    return parse


_SECONDS = _number(float, 0.001, 86_400)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="ovstop",
        description="A top for Open vSwitch: live metrics tree, histograms, upcall events, flow hit/miss; "
        "Prometheus /metrics (--headless) and JSON snapshots.",
    )
    p.add_argument(
        "command",
        nargs="?",
        choices=["snapshot", "fleet"],
        help="snapshot: write the whole state as JSON; fleet: every host, from Prometheus",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--headless", action="store_true", help="serve /metrics instead of the TUI")
    mode.add_argument("--check", action="store_true", help="print the eBPF capability table and exit")
    p.add_argument(
        "--listen",
        default=f"127.0.0.1:{DEFAULT_PORT}",
        metavar="ADDR:PORT",
        help=f"headless listen address (default 127.0.0.1:{DEFAULT_PORT})",
    )
    p.add_argument(
        "--max-age",
        type=_SECONDS,
        metavar="SECONDS",
        help="headless: serve a page only while its data is younger than this, else wait for the next round "
        "or answer 503 (default: 2 x -d + 2 x --timeout)",
    )
    p.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="FILE",
        help="headless: TLS and basic auth, in the Prometheus exporter-toolkit format",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="snapshot: write to FILE (atomically) instead of stdout")
    p.add_argument(
        "--sandbox",
        action="store_true",
        help="start a private Open vSwitch on the dummy datapath, with traffic, and watch it",
    )
    p.add_argument(
        "--sandbox-ports",
        type=_number(int, 1, MAX_SANDBOX_PORTS),
        default=4,
        metavar="N",
        help="sandbox: dummy-pmd ports (default 4)",
    )
    p.add_argument(
        "--sandbox-no-pmd",
        action="store_true",
        help="sandbox: plain dummy ports polled by the main thread, no PMD threads (cheap: several "
        "sandboxes on a small machine)",
    )
    p.add_argument(
        "--traffic",
        type=_number(float, 0, 1e6),
        default=200.0,
        metavar="PPS",
        help="sandbox: packets per second the traffic generator injects (default 200)",
    )
    p.add_argument("--unixctl", metavar="PATH", help="ovs-vswitchd control socket (default: found via OVS_RUNDIR)")
    p.add_argument("--db", metavar="REMOTE", help="OVSDB remote, e.g. unix:/var/run/openvswitch/db.sock")
    p.add_argument("--labels", metavar="FILE", help="TOML file mapping ports/bridges to extra labels (vpc, workload)")
    p.add_argument("-d", "--delay", type=_SECONDS, default=1.0, metavar="SECONDS", help="refresh interval (default 1)")
    p.add_argument(
        "--timeout",
        type=_SECONDS,
        default=2.0,
        metavar="SECONDS",
        help="deadline for one collection round, shared by its calls (default 2)",
    )
    p.add_argument(
        "--max-flows", type=_number(int, 0), default=10_000, metavar="N", help="datapath flows read per round"
    )
    p.add_argument(
        "--history-depth",
        type=_number(float, 0, 86_400),
        default=300.0,
        metavar="SECONDS",
        help="TUI: seconds of past snapshots kept for time scrub (b/f keys; default 300)",
    )
    p.add_argument("--no-ebpf", action="store_true", help="do not start the eBPF capture thread")
    p.add_argument(
        "--ebpf-deep",
        action="store_true",
        help="also attach the per-packet hooks (flow_lookup, action_execute): every packet pays for them",
    )
    p.add_argument("--record", metavar="FILE", help="record events (Retis-compatible JSON lines) and snapshots")
    p.add_argument("--record-overwrite", action="store_true", help="let --record replace an existing file")
    p.add_argument(
        "--record-rotate",
        metavar="SIZE",
        help="start a new part FILE.1, FILE.2 … when the recording reaches SIZE (bytes, or 500k, 20M, 1G)",
    )
    p.add_argument(
        "--record-keep",
        type=_number(int, 1, 10_000),
        default=DEFAULT_KEEP,
        metavar="N",
        help=f"with --record-rotate: keep at most N parts, deleting the oldest (default {DEFAULT_KEEP})",
    )
    p.add_argument("--replay", metavar="FILE", help="show a recording (ovstop or Retis) instead of a live switch")
    p.add_argument(
        "--connect",
        metavar="URL",
        help="show a remote ovstop --headless (http[s]://host:6103) instead of the local switch",
    )
    p.add_argument("--connect-ca", metavar="FILE", help="--connect: CA certificates to trust for https")
    p.add_argument(
        "--connect-auth-file",
        metavar="FILE",
        help="--connect: basic auth as user:password on the first line (or $OVSTOP_CONNECT_AUTH)",
    )
    p.add_argument("--ovn", action="store_true", help="with --sandbox: add a private OVN (NB, SB, northd, controller)")
    p.add_argument("--ovn-nb", metavar="REMOTE", help="OVN northbound DB remote")
    p.add_argument("--ovn-sb", metavar="REMOTE", help="OVN southbound DB remote")
    p.add_argument(
        "--log", metavar="FILE", help="debug log: every record, with tracebacks of collector errors, appended to FILE"
    )
    p.add_argument(
        "--prometheus",
        metavar="URL",
        help="the Prometheus (or compatible) server to query: ovstop fleet, or the TUI's fleet pane (key 7)",
    )
    p.add_argument("--job", default="ovstop", metavar="NAME", help="fleet: the scrape job of the exporters")
    p.add_argument(
        "--window",
        default="1m",
        metavar="DURATION",
        help="fleet: the PromQL range rates are taken over (default 1m; 4 scrape intervals or more)",
    )
    p.add_argument("--no-color", action="store_true", help="monochrome UI (NO_COLOR is honoured too)")
    p.add_argument("--version", action="version", version=f"ovstop {__version__}")
    return p


def _first_live_mode(args: argparse.Namespace, *more: tuple[str, bool]) -> str | None:
    """The first flag given that needs the local switch (a TUI on a recording or a remote cannot honour it)."""
    flags = (
        ("snapshot", args.command == "snapshot"),
        ("--headless", bool(args.headless)),
        ("--check", bool(args.check)),
        ("--sandbox", bool(args.sandbox)),
        ("--record", bool(args.record)),
        *more,
    )
    return next((flag for flag, on in flags if on), None)


def _check_files(args: argparse.Namespace) -> None:
    """Refuse, before anything starts, what cannot work: output files that cannot be written, --replay
    with a live mode (it plays in the TUI only)."""
    if args.replay and (clash := _first_live_mode(args)):
        raise OvstopError(f"--replay plays a recording in the TUI; it cannot be combined with {clash}")
    if args.record_rotate is not None and not args.record:
        raise OvstopError("--record-rotate needs --record FILE")
    if args.connect:
        if clash := _first_live_mode(args, ("--replay", bool(args.replay))):
            raise OvstopError(f"--connect shows a remote ovstop in the TUI; it cannot be combined with {clash}")
    elif (args.connect_ca or args.connect_auth_file) and args.command != "fleet":
        raise OvstopError("--connect-ca and --connect-auth-file go with --connect URL")
    if args.command == "fleet" and not args.prometheus:
        raise OvstopError("ovstop fleet needs --prometheus URL")
    if args.prometheus and (args.command == "snapshot" or args.headless or args.check):
        raise OvstopError("--prometheus goes with ovstop fleet or the TUI (its fleet pane, key 7)")
    if args.record:
        fileio.check_target(args.record, "recording", args.record_overwrite, OVERWRITE_HINT)
        if args.record_rotate is not None:
            check_rotation(args.record, args.record_overwrite)
    if args.command == "snapshot" and args.output not in (None, "-"):
        fileio.check_target(args.output, "snapshot")


def options_from(args: argparse.Namespace) -> Options:
    _check_files(args)
    return Options(
        unixctl=args.unixctl,
        db=args.db,
        sandbox=args.sandbox,
        sandbox_ports=args.sandbox_ports,
        traffic_pps=args.traffic,
        labels=args.labels,
        timeout=args.timeout,
        max_flows=args.max_flows,
        ovn=args.ovn,
        ovn_nb=args.ovn_nb,
        ovn_sb=args.ovn_sb,
        ebpf=not args.no_ebpf,
        ebpf_deep=args.ebpf_deep,
        record=args.record,
        record_rotate=parse_size(args.record_rotate) if args.record_rotate is not None else None,
        record_keep=args.record_keep,
        record_overwrite=args.record_overwrite,
        interval=args.delay,
        replay=args.replay,
        sandbox_pmd=not args.sandbox_no_pmd,
        connect=args.connect,
        connect_ca=args.connect_ca,
        connect_auth_file=args.connect_auth_file,
        history_depth=args.history_depth,
        max_age=args.max_age,
    )


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """``--record-rotate`` sizes: bytes, or a number with k, M or G (powers of 1024), at least 4 KiB."""
    number, unit = text.strip().rstrip("bB"), ""
    if number and number[-1].lower() in _UNITS:
        number, unit = number[:-1], number[-1].lower()
    try:
        size = int(float(number) * _UNITS[unit])
    except (ValueError, OverflowError):
        raise OvstopError(f"--record-rotate {text!r}: expected a size such as 500k, 20M or 1G") from None
    if size < 4096:
        raise OvstopError(f"--record-rotate {text!r}: too small (at least 4k)")
    return size


def run_snapshot(options: Options, output: str | None) -> int:
    from ovstop.export import snapshot
    from ovstop.runtime import running

    with running(options) as rt:
        rt.sampler.need("snapshot", EVERYTHING)
        rt.first_sample()
        # A second round one interval later gives every counter a rate.
        time.sleep(options.interval)
        snap = rt.sampler.sample()
        snapshot.write(snapshot.to_dict(snap), output)
    if output:
        print(f"snapshot written to {output}", file=sys.stderr)
    return 0


def run_headless(options: Options, listen: str, web_config_file: str | None) -> int:
    from ovstop.collect.refresher import Refresher
    from ovstop.export import webconfig
    from ovstop.export.server import MetricsEndpoint, exposed_without_protection, parse_listen, serve
    from ovstop.runtime import running

    host, port = parse_listen(listen)
    web_config = webconfig.load(web_config_file) if web_config_file else webconfig.WebConfig()
    # Bind first: a port in use fails before a sandbox or any connection is started.
    endpoint = MetricsEndpoint()
    server = serve(endpoint, host, port, web_config)
    try:
        with running(options) as rt:
            rt.sampler.need("metrics", METRICS)  # no per-flow series on /metrics: no flow dump
            rt.first_sample()
            rt.serve_rounds()
            endpoint.events, endpoint.events_reason = rt.event_store, rt.events_reason
            refresher = Refresher(rt.sampler, options.interval, bound=options.max_age)
            endpoint.attach(refresher)
            print(
                f"ovstop: serving /metrics on {server.scheme}://{host}:{server.server_port}/metrics",
                file=sys.stderr,
                flush=True,
            )
            warning = exposed_without_protection(host, web_config)
            if warning:
                print(f"ovstop: warning: {warning}", file=sys.stderr, flush=True)
            # Rounds on this thread until a signal (SystemExit), ctrl+c (KeyboardInterrupt) or an error that
            # stops them (e.g. --record on a full disk: one line, exit; README). Scrapes never wait for one.
            refresher.run()
    finally:
        server.shutdown()
    return 0


def open_fleet(args: argparse.Namespace) -> tuple[Fleet, str]:
    """The fleet of ``--prometheus``, asked once: an unreachable or refusing Prometheus is one line before the
    screen is taken."""
    from ovstop.remote.fleet import Fleet, check_window
    from ovstop.remote.http import HttpClient, base_url

    url = base_url(args.prometheus, "--prometheus")
    fleet = Fleet(HttpClient(url, timeout=args.timeout), args.job, check_window(args.window))
    fleet.rows()
    return fleet, url


def attach(options: Options, address: str, no_color: bool) -> None:
    """The TUI on ``address`` (a host picked in a fleet), as ``--connect``; returns when the user quits it."""
    scheme = "https" if options.connect_ca else "http"
    run_tui(dataclasses.replace(options, connect=f"{scheme}://{address}"), no_color)


def run_fleet(options: Options, args: argparse.Namespace) -> int:
    """The fleet table; Enter on a host attaches the TUI to it (``--connect``), quitting that returns here."""
    fleet, url = open_fleet(args)
    fleet_app = _tui("ovstop.tui.fleet_app", args.no_color).FleetApp
    while (address := fleet_app(fleet, options.interval, url).run()) is not None:
        attach(options, address, args.no_color)
    return 0


def run_check() -> int:
    from ovstop.ebpf.capability import capabilities, format_check_table, probe_system

    print(format_check_table(capabilities(probe_system())))
    return 0


def _tui(module: str, no_color: bool) -> ModuleType:
    """A module of the TUI, imported only now (Textual is the optional ``tui`` extra): one line without it."""
    if no_color:
        os.environ["NO_COLOR"] = "1"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("textual", "rich"):
            raise
        raise OvstopError(
            "the TUI needs Textual, which this install lacks: pip install 'ovstop[tui]' (or use --headless or snapshot)"
        ) from None


def run_tui(options: Options, no_color: bool, fleet: tuple[Fleet, str] | None = None) -> int:
    """The TUI; with a ``fleet`` (``--prometheus``) Enter in its fleet pane attaches to a host, and quitting
    that comes back to this TUI."""
    launch: Callable[..., int | str] = _tui("ovstop.tui.launch", no_color).launch
    while isinstance(result := launch(options, *(fleet or ())), str):
        attach(options, result, no_color)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    signals.install()
    try:
        tui = not (args.check or args.command == "snapshot" or args.headless)
        logs.setup(args.log, terminal_is_ui=tui)
        options = options_from(args)
        if args.check:
            return run_check()
        if args.command == "snapshot":
            return run_snapshot(options, args.output)
        if args.command == "fleet":
            return run_fleet(options, args)
        if args.headless:
            return run_headless(options, args.listen, args.web_config_file)
        return run_tui(options, args.no_color, open_fleet(args) if args.prometheus else None)
    except OvstopError as exc:
        print(f"ovstop: {describe(exc)}", file=sys.stderr)  # one line, whatever the user's input held
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
