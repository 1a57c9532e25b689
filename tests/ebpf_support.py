"""Helpers shared by the eBPF tests: a kernel-headers tree for bcc and a binary with OVS's USDT probes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# The probe signatures of ovs-vswitchd (lib/dpif.c, lib/dpif-netlink.c), so that bcc generates the
# same argument readers it would for an ovs-vswitchd built with --enable-usdt-probes.
USDT_SOURCE = r"""
#include <sys/sdt.h>
#include <string.h>
int main(int argc, char **argv)
{
    char pkt[128];
    const char *name = "system@ovs-system";
    unsigned int type = 0, size = sizeof(pkt);  /* an enum and dp_packet_size()'s uint32_t */
    unsigned long key_len = 0;  /* size_t */
    void *p = argv;

    memset(pkt, argc, sizeof(pkt));
    DTRACE_PROBE6(dpif_recv, recv_upcall, name, type, pkt, size, p, key_len);
    DTRACE_PROBE4(dpif_netlink_operate__, op_flow_put, p, p, p, p);
    DTRACE_PROBE5(dpif_netlink_operate__, op_flow_execute, p, p, pkt, size, p);
    return 0;
}
"""


def headers_tree(workdir: Path) -> str:
    """A kernel headers tree to export as BCC_KERNEL_SOURCE, or "" when none can be built.

    The host may run a kernel without installed headers; Debian's linux-headers packages split a
    release into ``-common`` (sources) and ``-<flavour>`` (generated files), and bcc's
    ``BCC_KERNEL_SOURCE`` takes one directory, so the two are merged as a tree of symlinks. The
    programs are only compiled and verifier-loaded here, which any recent headers allow.
    """
    flavours = sorted(Path("/usr/src").glob("linux-headers-*-amd64"))
    if not flavours:
        return ""
    flavour = flavours[-1]
    common = Path(str(flavour).removesuffix("-amd64") + "-common")
    if not common.is_dir():
        return ""
    tree = workdir / "kheaders"
    if not tree.exists():
        subprocess.run(["cp", "-rs", f"{common}/.", str(tree)], check=True)
        subprocess.run(["cp", "-rsf", f"{flavour}/.", str(tree)], check=True)
    return str(tree)


def build_usdt_binary(workdir: Path) -> Path | None:
    """Compile the USDT stand-in; None when gcc or sys/sdt.h (systemtap-sdt-dev) is missing."""
    if shutil.which("gcc") is None:
        return None
    src = workdir / "usdt_probes.c"
    out = workdir / "usdt_probes"
    src.write_text(USDT_SOURCE)
    built = subprocess.run(["gcc", "-O1", "-o", str(out), str(src)], capture_output=True)
    return out if built.returncode == 0 else None
