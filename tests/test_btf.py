"""ovstop's BTF reader and struct layouts, checked against pahole (dwarves) on real kernels' BTF.

- the host's own /sys/kernel/btf/vmlinux (whatever kernel runs the tests);
- the vmlinux and openvswitch.ko BTF of both guest kernels (Debian 12's 6.1, Debian 13's 6.12), which
  scripts/guest/build-rootfs.sh extracts from the guest images (scripts/guest/extract-btf.sh): those
  tests belong to the guest stage (marker ``guest``) though they run on the host, without QEMU;
- the fail-closed paths: no module BTF (hidden from the reader), a field the BTF lacks, a corrupt blob.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from test_ebpf_check import _view

from ovstop.ebpf import layout as layout_mod
from ovstop.ebpf.btf import Btf, BtfError
from ovstop.ebpf.capability import capabilities, format_check_table, plan_hooks
from ovstop.ebpf.layout import FIELDS, MACROS, VERIFIED, Field, Layout, resolve

REPO = Path(__file__).resolve().parents[1]
GUEST_BTF = {suite: REPO / d / "btf" for suite, d in (("bookworm", ".guest"), ("trixie", ".guest-trixie"))}
HOST_VMLINUX = Path("/sys/kernel/btf/vmlinux")
# nf_nat_range2 comes from the nf_nat module: it is in openvswitch's split BTF, not in vmlinux's
OVS_STRUCTS = ("dp_upcall_info", "sw_flow", "sw_flow_id", "sw_flow_key", "ovs_conntrack_info", "nf_nat_range2")
MEMBER_RE = re.compile(
    r"^\s*(?P<type>.*?)\s*\b(?P<name>\w+)(\[\d*\])*(:\d+)?;\s*/\*\s*(?P<off>\d+)(:\s*(?P<bit>\d+))?\s"
)
CLOSE_RE = re.compile(r"^\s*}\s*(__attribute__\(\(\w+\)\)\s*)?(?P<name>\w*);\s*/\*\s*(?P<off>\d+)\s")


def _pahole(struct: str, btf: Path, base: Path | None = None) -> dict[str, tuple[int, int, str]]:
    """Every member of ``struct`` as pahole prints it: dotted path -> (byte offset, bit, type name)."""
    if shutil.which("pahole") is None:
        pytest.fail("pahole missing: apt-get install dwarves (scripts/setup.sh installs it)")
    argv = ["pahole", "-F", "btf", "-C", struct, *(["--btf_base", str(base)] if base else []), str(btf)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout  # stderr: unknown kinds
    assert out.startswith(f"struct {struct} {{"), f"pahole found no struct {struct} in {btf}: {out[:200]}"
    scopes: list[dict[str, tuple[int, int, str]]] = [{}]
    for line in out.splitlines()[1:]:
        if line.rstrip().endswith("{"):
            scopes.append({})
        elif close := CLOSE_RE.match(line):
            inner = scopes.pop()
            name = close["name"]
            scopes[-1].update({f"{name}.{k}" if name else k: v for k, v in inner.items()})
            if name:
                scopes[-1][name] = (int(close["off"]), 0, "")
        elif member := MEMBER_RE.match(line):
            scopes[-1][member["name"]] = (int(member["off"]), int(member["bit"] or 0), member["type"])
    assert len(scopes) == 1, f"unbalanced pahole output for {struct}"
    return scopes[0]


def _pahole_offset(struct: str, path: str, btf: Path, base: Path | None) -> int:
    """Offset of a dotted path, following named struct members into their own pahole output."""
    members = _pahole(struct, btf, base)
    if path in members:
        return members[path][0]
    first, rest = path.split(".", 1)
    offset, _bit, type_name = members[first]
    return offset + _pahole_offset(type_name.removeprefix("struct "), rest, btf, base)


def _assert_reader_matches_pahole(reader: Btf, struct: str, btf: Path, base: Path | None) -> int:
    members = _pahole(struct, btf, base)
    for path, (offset, bit, _type) in members.items():
        # pahole places a bitfield by its storage unit's byte and the bit within that unit
        assert reader.member(struct, path).bit_offset == offset * 8 + bit, f"{struct}.{path}"
    return len(members)


@pytest.mark.skipif(not HOST_VMLINUX.exists(), reason="this kernel publishes no /sys/kernel/btf/vmlinux")
def test_reader_matches_pahole_on_this_kernels_vmlinux() -> None:
    reader = Btf.load(HOST_VMLINUX)
    checked = sum(
        _assert_reader_matches_pahole(reader, s, HOST_VMLINUX, None)
        for s in ("sk_buff", "nf_conntrack_zone", "nf_nat_range2", "task_struct")
    )
    assert checked > 100
    assert reader.size_of(reader.find_struct("nf_nat_range2")) == 44


def test_no_module_btf_turns_struct_reading_hooks_off(tmp_path: Path) -> None:
    """The module's BTF hidden from the reader, on a kernel no table was verified for."""
    if HOST_VMLINUX.exists():
        shutil.copy(HOST_VMLINUX, tmp_path / "vmlinux")
    layout = resolve("5.10.0-99-amd64", btf_dir=tmp_path)
    assert layout.values == {}
    assert set(layout.missing) == set(MACROS)
    reasons = set(layout.missing.values())
    assert len(reasons) == 1 and "no openvswitch module BTF" in reasons.pop()
    view = _view(kernel_release="5.10.0-99-amd64", layout=layout)
    hooks, missing = plan_hooks(view)
    # return values and pointer arguments need no struct reads: the upcall latency keeps working
    assert {h.fn for h in hooks} >= {"upcall_return"}
    for event in ("upcall", "upcall_enqueue", "action_execute", "flow_lookup"):
        assert missing[event].startswith("struct layout unknown: no openvswitch module BTF"), event
    caps = {c.name: c for c in capabilities(view)}
    assert caps["struct_layout"].available is False
    assert caps["upcall_return"].available is True
    assert caps["upcall_return"].reason.endswith("no struct reads")
    row = next(line for line in format_check_table(caps.values()).splitlines() if line.startswith("struct_layout"))
    assert row.split()[1] == "no"


def test_verified_table_used_only_on_its_release(tmp_path: Path) -> None:
    layout = resolve("6.1.0-57-amd64", btf_dir=tmp_path)
    assert layout.source == "verified table for 6.1.0-57-amd64"
    assert layout.values == VERIFIED["6.1.0-57-amd64"] and not layout.missing
    assert resolve("6.1.0-58-amd64", btf_dir=tmp_path).values == {}
    assert sorted(layout.defines()) == sorted(MACROS)
    caps = {c.name: c for c in capabilities(_view(layout=layout))}
    assert caps["flow_lookup"].reason.endswith(
        "struct offsets from verified table for 6.1.0-57-amd64 (per-packet: only with --ebpf-deep)"
    )


def test_every_offset_a_program_reads_is_resolved_and_required() -> None:
    """The macros used in bpf/*.c are exactly the ones the layout resolves (and functions declare)."""
    used = set()
    for c in (REPO / "bpf").glob("*.c"):
        used |= set(re.findall(r"\b(OVS_(?:UPCALL_INFO|KEY|FLOW|CT_INFO)_[A-Z_]+)\b", c.read_text()))
    used -= {"OVS_CT_INFO_COMMIT_BIT", "OVS_CT_INFO_NAT_SHIFT", "OVS_CT_INFO_NAT_MASK", "OVS_CT_INFO_FORCE_BIT"}
    assert used == set(MACROS)
    assert {m for needs in layout_mod.NEEDS.values() for m in needs} == set(MACROS)


def _guest_btf(suite: str) -> Path:
    btf = GUEST_BTF[suite]
    if not (btf / "openvswitch").exists():
        pytest.skip(f"no {btf}: build the guest image first (scripts/guest/build-rootfs.sh --suite {suite})")
    return btf


guest_suites = pytest.mark.parametrize("suite", sorted(GUEST_BTF))


@pytest.mark.guest
@guest_suites
def test_reader_matches_pahole_on_guest_kernels(suite: str) -> None:
    btf = _guest_btf(suite)
    vmlinux = Btf.load(btf / "vmlinux")
    module = Btf.load(btf / "openvswitch", base=vmlinux)
    for struct in OVS_STRUCTS:
        assert _assert_reader_matches_pahole(module, struct, btf / "openvswitch", btf / "vmlinux") >= 2
    assert _assert_reader_matches_pahole(vmlinux, "nf_conntrack_zone", btf / "vmlinux", None) == 3


@pytest.mark.guest
@guest_suites
def test_layout_from_guest_btf_equals_pahole(suite: str) -> None:
    btf = _guest_btf(suite)
    release = (btf / "kernel-release").read_text().strip()
    layout = resolve(release, btf_dir=btf)
    assert layout.source == f"BTF ({btf / 'openvswitch'})"
    assert layout.missing == {}
    for f in FIELDS:
        assert layout.values[f.macro] == _pahole_offset(f.struct, f.path, btf / "openvswitch", btf / "vmlinux"), f
    ct = _pahole("ovs_conntrack_info", btf / "openvswitch", btf / "vmlinux")
    assert {name: ct[name][:2] for name in ("commit", "nat", "force")} == {
        name: (layout.values["OVS_CT_INFO_BITS"], bit) for name, (bit, _width) in layout_mod.CT_BITFIELDS.items()
    }
    if release in VERIFIED:
        assert VERIFIED[release] == layout.values


@pytest.mark.guest
def test_guest_kernels_differ_where_the_issue_saw_wrong_reads() -> None:
    """6.12 moved sw_flow.id and sw_flow_key.recirc_id: the 6.1 offsets would read ufid_len and neighbours."""
    old = resolve("", btf_dir=_guest_btf("bookworm")).values
    new = resolve("", btf_dir=_guest_btf("trixie")).values
    assert new["OVS_FLOW_UFID"] - old["OVS_FLOW_UFID"] == 8
    assert new["OVS_KEY_RECIRC_ID"] != old["OVS_KEY_RECIRC_ID"]
    assert new["OVS_FLOW_SF_ACTS"] != old["OVS_FLOW_SF_ACTS"]


@pytest.mark.guest
def test_field_missing_from_btf_turns_off_only_its_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    btf = _guest_btf("trixie")
    gone = Field("OVS_FLOW_SF_ACTS", "sw_flow", "sf_acts_renamed", 8)
    monkeypatch.setattr(layout_mod, "FIELDS", tuple(gone if f.macro == gone.macro else f for f in FIELDS))
    layout = resolve("", btf_dir=btf)
    assert layout.missing == {"OVS_FLOW_SF_ACTS": "openvswitch BTF has no sw_flow.sf_acts_renamed"}
    _hooks, missing = plan_hooks(_view(layout=layout))
    assert missing == {"flow_lookup": "struct layout unknown: openvswitch BTF has no sw_flow.sf_acts_renamed"}
    caps = {c.name: c for c in capabilities(_view(layout=layout))}
    assert caps["struct_layout"].available is False
    assert "sf_acts_renamed" in caps["struct_layout"].reason


@pytest.mark.guest
def test_corrupt_module_btf_is_one_reason(tmp_path: Path) -> None:
    btf = _guest_btf("trixie")
    shutil.copy(btf / "vmlinux", tmp_path / "vmlinux")
    (tmp_path / "openvswitch").write_bytes((btf / "openvswitch").read_bytes()[:5000])
    layout = resolve("", btf_dir=tmp_path)
    assert layout.values == {}
    assert set(layout.missing.values()) == {"openvswitch BTF: truncated (5000 bytes)"}
    with pytest.raises(BtfError, match="not little-endian BTF"):
        Btf(b"\0" * 64)


def test_layout_dataclass_reports_first_missing_reason() -> None:
    layout = replace(Layout(), values={"OVS_KEY_IN_PORT": 320}, missing={"OVS_FLOW_UFID": "why"})
    assert layout.why_off(["OVS_KEY_IN_PORT"]) == ""
    assert layout.why_off(["OVS_KEY_IN_PORT", "OVS_FLOW_UFID"]) == "struct layout unknown: why"
    assert layout.why_off(["OVS_KEY_RECIRC_ID"]) == "struct layout unknown: struct layout not resolved"
