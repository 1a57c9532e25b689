"""What eBPF capture can do on this system, with a reason for every missing piece.

:func:`probe_system` gathers the facts (privileges, bcc, kernel headers, the openvswitch module,
tracepoints and symbols, kprobe support, ovs-vswitchd's USDT notes); :func:`capabilities` turns
them into the rows ``ovstop --check`` prints; :func:`plan_hooks` picks the hooks to attach.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ovstop.ebpf.bcc_import import import_bcc
from ovstop.ebpf.hooks import DEEP_OFF, EVENTS, HOOKS, PER_PACKET, Hook, Kind
from ovstop.ebpf.kernel_drops import DropLayout, system_layout
from ovstop.ebpf.layout import NEEDS, Layout
from ovstop.ebpf.layout import resolve as resolve_layout
from ovstop.ebpf.usdt_notes import usdt_probes
from ovstop.errors import SourceError

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39
RINGBUF_MIN_KERNEL = (5, 8)
MODULE_KFUNC_MIN_BCC = (0, 28)  # MODULE_KRETFUNC_PROBE: fexit on functions of a kernel module
UNIXCTL_FALLBACK = "ovstop falls back to unixctl statistics (dpif-netdev/pmd-perf-show, upcall/show)"


@dataclass(frozen=True)
class Capability:
    name: str
    available: bool
    reason: str


@dataclass
class SystemView:
    """Facts about the running system that decide what can be attached."""

    kernel_release: str = ""
    privileged: bool = False
    privilege_reason: str = ""
    bcc_error: str = ""
    headers: str = ""
    module_loaded: bool = False
    kernel_datapath: bool = False
    kprobes: bool = False
    tracepoints: set[str] = field(default_factory=set)
    symbols: set[str] = field(default_factory=set)
    vswitchd_pid: int | None = None
    vswitchd_exe: str = ""
    usdt: set[str] = field(default_factory=set)
    usdt_error: str = ""
    layout: Layout = field(default_factory=Layout)
    fexit_error: str = "fexit support not checked"
    drop_layout: DropLayout | None = None
    """The kernel's OVS drop reasons and the offsets bpf/drops.c reads; None when it has none (``drops_error``)."""
    drops_error: str = "kernel drop reasons not checked"

    @property
    def ringbuf(self) -> bool:
        return kernel_version(self.kernel_release) >= RINGBUF_MIN_KERNEL


def kernel_version(release: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def _privileges() -> tuple[bool, str]:
    if os.geteuid() == 0:
        return True, "running as root"
    caps = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            caps = int(line.split()[1], 16)
    if caps & (1 << CAP_SYS_ADMIN) or (caps & (1 << CAP_BPF) and caps & (1 << CAP_PERFMON)):
        return True, "CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) held"
    return False, "not root and without CAP_BPF+CAP_PERFMON: run ovstop with sudo for eBPF capture"


def find_kernel_headers(release: str) -> str:
    """The directory bcc will compile against, or "" (same search order as bcc's loader)."""
    env = os.environ.get("BCC_KERNEL_SOURCE")
    if env:
        return env if Path(env, "include/linux/kconfig.h").is_file() else ""
    kdir = Path("/lib/modules", release)
    for candidate in (kdir / "source", kdir / "build"):
        if (candidate / "include/linux/kconfig.h").is_file():
            return str(candidate)
    if Path("/sys/kernel/kheaders.tar.xz").exists():
        return "/sys/kernel/kheaders.tar.xz"
    return ""


_OVS_SYMBOLS = {h.target for h in HOOKS if h.kind in (Kind.KPROBE, Kind.KRETPROBE)}
_OVS_TRACEPOINTS = {h.target for h in HOOKS if h.kind is Kind.RAW_TRACEPOINT}


def _kallsyms() -> tuple[set[str], set[str]]:
    """Kernel functions ovstop probes, and openvswitch tracepoints, present in /proc/kallsyms."""
    symbols: set[str] = set()
    tracepoints: set[str] = set()
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                name = parts[2]
                if name in _OVS_SYMBOLS and parts[1] in "tT":
                    symbols.add(name)
                elif name.startswith("__traceiter_") and name[12:] in _OVS_TRACEPOINTS:
                    tracepoints.add(name[12:])
    except OSError:
        pass
    for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
        for tp in _OVS_TRACEPOINTS:
            if Path(root, "events/openvswitch", tp).is_dir():
                tracepoints.add(tp)
    return symbols, tracepoints


def _kprobes_supported() -> bool:
    return Path("/sys/bus/event_source/devices/kprobe").exists() or any(
        Path(root, "kprobe_events").exists() for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
    )


def _fexit_missing(view: SystemView) -> str:
    """Why fexit programs on openvswitch functions cannot be used here, or ""."""
    if view.bcc_error:
        return view.bcc_error
    bcc = import_bcc()
    version = tuple(int(x) for x in re.findall(r"\d+", getattr(bcc, "__version__", "0.0"))[:2])
    if version < MODULE_KFUNC_MIN_BCC:
        return f"bcc {'.'.join(map(str, version))} cannot attach fexit to module functions (needs 0.28+)"
    if not bcc.BPF.support_kfunc():
        return "kernel without BPF trampolines (fentry/fexit)"
    if not Path("/sys/kernel/btf/openvswitch").exists():
        return "no openvswitch module BTF for fexit"
    return ""


def _find_vswitchd() -> int | None:
    for entry in sorted(Path("/proc").iterdir(), key=lambda p: p.name):
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "ovs-vswitchd":
                    return int(entry.name)
            except OSError:
                continue
    return None


def probe_system(vswitchd_pid: int | None = None) -> SystemView:
    """Gather the facts of this system; ``vswitchd_pid`` picks one ovs-vswitchd among several."""
    view = SystemView(kernel_release=platform.release())
    view.privileged, view.privilege_reason = _privileges()
    try:
        import_bcc()
    except SourceError as exc:
        view.bcc_error = str(exc)
    view.headers = find_kernel_headers(view.kernel_release)
    view.module_loaded = Path("/sys/module/openvswitch").exists()
    if view.module_loaded:
        view.layout = resolve_layout(view.kernel_release)
    view.fexit_error = _fexit_missing(view)
    view.drops_error = "openvswitch kernel module not loaded"
    if view.module_loaded:
        try:
            view.drop_layout, view.drops_error = system_layout(), ""
        except SourceError as exc:
            view.drops_error = str(exc)
    view.kernel_datapath = Path("/sys/class/net/ovs-system").exists()
    view.kprobes = _kprobes_supported()
    view.symbols, view.tracepoints = _kallsyms()
    view.vswitchd_pid = vswitchd_pid if vswitchd_pid is not None else _find_vswitchd()
    if view.vswitchd_pid is not None:
        exe = f"/proc/{view.vswitchd_pid}/exe"
        try:
            view.vswitchd_exe = os.readlink(exe)
            view.usdt = usdt_probes(exe)
        except (OSError, SourceError) as exc:
            view.usdt_error = f"cannot read ovs-vswitchd's binary: {exc}"
    return view


def _hook_missing(view: SystemView, hook: Hook) -> str:
    """Why ``hook`` cannot attach, or "" when it can."""
    if hook.kind is not Kind.USDT and not view.module_loaded:
        return "openvswitch kernel module not loaded"
    if hook.kind is Kind.RAW_TRACEPOINT:
        if hook.target not in view.tracepoints:
            return f"no tracepoint openvswitch:{hook.target} (Linux < 5.14?)"
        return view.layout.why_off(NEEDS.get(hook.fn, ()))
    if hook.kind is Kind.USDT:
        if view.vswitchd_pid is None:
            return "ovs-vswitchd is not running"
        if view.usdt_error:
            return view.usdt_error
        if hook.target not in view.usdt:
            return f"ovs-vswitchd ({view.vswitchd_exe}) has no USDT probe {hook.target} (needs --enable-usdt-probes)"
        return ""
    if hook.kind is Kind.FEXIT and view.fexit_error:
        return view.fexit_error
    if hook.kind is not Kind.FEXIT and not view.kprobes:
        return "kernel without kprobe support (CONFIG_KPROBES)"
    if hook.target not in view.symbols:
        return f"kernel symbol {hook.target} not found in /proc/kallsyms"
    return view.layout.why_off(NEEDS.get(hook.fn, ()))


def _prerequisites(view: SystemView) -> str:
    """The first missing prerequisite shared by every hook, or ""."""
    if not view.privileged:
        return view.privilege_reason
    if view.bcc_error:
        return view.bcc_error
    if not view.headers:
        return "kernel headers missing"
    return ""


def _first_missing(view: SystemView, hooks: Iterable[Hook]) -> str:
    return next((why for why in (_hook_missing(view, h) for h in hooks) if why), "")


def plan_hooks(view: SystemView, deep: bool = True) -> tuple[list[Hook], dict[str, str]]:
    """Hooks to attach, and a reason per event that gets no events; without ``deep``, none of the
    per-packet ones (:data:`~ovstop.ebpf.hooks.PER_PACKET`)."""
    blocker = _prerequisites(view)
    if blocker:
        return [], dict.fromkeys(EVENTS, blocker)
    chosen: list[Hook] = []
    missing: dict[str, str] = {}
    for event in EVENTS:
        if not deep and event in PER_PACKET:
            missing[event] = DEEP_OFF
            continue
        hooks = [h for h in HOOKS if h.event == event]
        required = [h for h in hooks if not h.fallback_for and not h.optional and not h.replaces]
        for better in (h for h in hooks if h.replaces and not _hook_missing(view, h)):
            required = [h for h in required if h.fn not in better.replaces] + [better]
        why = _first_missing(view, required)
        fallbacks = {h.fallback_for: h for h in hooks if h.fallback_for}
        if why and fallbacks:
            alternative = [fallbacks.get(h.target, h) if h.kind is Kind.RAW_TRACEPOINT else h for h in required]
            if not _first_missing(view, alternative):
                required, why = alternative, ""
        if why:
            missing[event] = why
            continue
        chosen += required + [h for h in hooks if h.optional and not _hook_missing(view, h)]
    return chosen, missing


def _describe(hooks: Iterable[Hook], view: SystemView) -> str:
    """The attached probes of one event, why not the fexit one if it has one, and where offsets came from."""
    chosen = list(hooks)
    text = ", ".join(f"{h.kind} {h.target}" for h in chosen)
    events = {h.event for h in chosen}
    unused = [h for h in HOOKS if h.replaces and h.event in events and h not in chosen]
    if unused:
        text += f" (not fexit: {_hook_missing(view, unused[0])})"
    if any(NEEDS.get(h.fn) for h in chosen):
        return f"{text}; struct offsets from {view.layout.source}"
    return f"{text}; no struct reads"


def capabilities(view: SystemView) -> list[Capability]:
    """One row per prerequisite and per event type."""
    caps = [
        Capability("privileges", view.privileged, view.privilege_reason),
        Capability("bcc", not view.bcc_error, view.bcc_error or "bcc Python bindings found"),
    ]
    headers_reason = (
        f"kernel headers at {view.headers}"
        if view.headers
        else f"no kernel headers for {view.kernel_release}: install linux-headers-$(uname -r), "
        "or point BCC_KERNEL_SOURCE at a headers tree"
    )
    caps.append(Capability("kernel_headers", bool(view.headers), headers_reason))
    if view.module_loaded:
        dp = "kernel datapath ovs-system present" if view.kernel_datapath else "no kernel datapath created yet"
        caps.append(Capability("openvswitch_module", True, f"openvswitch module loaded; {dp}"))
    elif view.vswitchd_pid is not None:
        caps.append(
            Capability(
                "openvswitch_module",
                False,
                "openvswitch kernel module not loaded: ovs-vswitchd uses the userspace (netdev) datapath "
                f"only, which has no kernel hooks; {UNIXCTL_FALLBACK}",
            )
        )
    else:
        caps.append(Capability("openvswitch_module", False, "openvswitch kernel module not loaded"))
    caps.append(
        Capability(
            "kprobes",
            view.kprobes,
            "kprobes supported" if view.kprobes else "kernel without kprobe support (CONFIG_KPROBES unset)",
        )
    )
    caps.append(
        Capability(
            "ring_buffer",
            view.ringbuf,
            "BPF ring buffer (Linux >= 5.8)" if view.ringbuf else "Linux < 5.8: perf buffer used instead",
        )
    )
    if view.module_loaded:
        caps.append(_layout_row(view.layout))
    caps.append(_drops_row(view))
    hooks, missing = plan_hooks(view)
    for event in EVENTS:
        if event in missing:
            caps.append(Capability(event, False, missing[event]))
        else:
            deep = " (per-packet: only with --ebpf-deep)" if event in PER_PACKET else ""
            caps.append(Capability(event, True, _describe((h for h in hooks if h.event == event), view) + deep))
    return caps


def drops_missing(view: SystemView) -> str:
    """Why kernel drops by reason cannot be counted here, or ""."""
    return _prerequisites(view) or view.drops_error


def _drops_row(view: SystemView) -> Capability:
    why = drops_missing(view)
    if why or view.drop_layout is None:  # no layout: drops_error says why
        return Capability("kernel_drops", False, why)
    reasons = len(view.drop_layout.names)
    return Capability(
        "kernel_drops", True, f"raw_tracepoint skb:kfree_skb, {reasons} OVS drop reasons and offsets from BTF"
    )


def _layout_row(layout: Layout) -> Capability:
    if not layout.missing:
        return Capability("struct_layout", True, f"openvswitch struct offsets from {layout.source}")
    reasons = sorted(set(layout.missing.values()))
    where = f" (others from {layout.source})" if layout.values else ""
    return Capability("struct_layout", False, f"{'; '.join(reasons)}{where}")


def format_check_table(caps: Iterable[Capability]) -> str:
    """The ``ovstop --check`` table: name, yes/no, reason."""
    rows = list(caps)
    width = max((len(c.name) for c in rows), default=0)
    lines = [f"{'capability':<{width}}  ok   reason"]
    lines += [f"{c.name:<{width}}  {'yes' if c.available else 'no ':<3}  {c.reason}" for c in rows]
    return "\n".join(lines)
