#!/bin/bash
# Build ovs-vswitchd with USDT probes for a guest: Debian builds it without them (Fedora and RHEL with), so
# the guest's own binary cannot show ovstop's recv_upcall and flow_operation events. Debian ships the OVS
# source it built as the openvswitch-source package; this builds that package, in exactly the version of the
# guest's openvswitch-switch, with --enable-usdt-probes in a throw-away build chroot of the same suite and
# mirror (mmdebstrap; nothing is installed on the host), and copies out:
#   OUT/ovs-vswitchd       the USDT build (debug info stripped; the .note.stapsdt notes stay)
#   OUT/upcall_monitor.py  OVS's own USDT script from the same source tree, to count upcalls side by side;
#                          its two "unsigned char x[N]" event fields are spelled "u8 x[N]" (same type), as
#                          bcc 0.26 (Debian 12) cannot map a multi-word array type and the script would exit
#                          at its first event ("Type: 'unsigned char[64]' not recognized"); nothing else changes
#   OUT/version            the source package version
#
# Usage: scripts/guest/build-ovs-usdt.sh SUITE ROOTFS OUT   (ROOTFS: the guest's root file system)
# Needs root and mmdebstrap; called by build-rootfs.sh, which caches OUT.
set -euo pipefail

suite=${1:?"build-ovs-usdt: usage: build-ovs-usdt.sh SUITE ROOTFS OUT"}
rootfs=${2:?"build-ovs-usdt: no guest rootfs given"}
out=${3:?"build-ovs-usdt: no output directory given"}
mirror=${OVSTOP_GUEST_MIRROR:-http://deb.debian.org/debian}

version=$(chroot "$rootfs" dpkg-query -W -f='${Version}' openvswitch-switch) ||
    { echo "build-ovs-usdt: openvswitch-switch is not installed in $rootfs" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
# Inside the chroot: unpack Debian's (already configured) source tree, configure it with the probes, build
# its generated sources and then only ovs-vswitchd, at low priority (CI's other jobs share the cores).
build='set -e
mkdir -p /build && cd /build && tar xzf /usr/src/openvswitch/openvswitch.tar.gz && cd openvswitch
./configure --quiet --enable-usdt-probes --disable-ssl --disable-libcapng --disable-afxdp --prefix=/usr --localstatedir=/var \
    --sysconfdir=/etc >/dev/null
printf "generated-sources: \$(BUILT_SOURCES)\n" >/build/generated.mk
nice -n 10 make -s -j"$(nproc)" -f Makefile -f /build/generated.mk generated-sources >/dev/null
nice -n 10 make -s -j"$(nproc)" vswitchd/ovs-vswitchd >/dev/null
strip --strip-debug vswitchd/ovs-vswitchd'
start=$(date +%s)
mmdebstrap --quiet --variant=buildd --include="openvswitch-source=$version,python3,systemtap-sdt-dev" \
    --customize-hook="chroot \"\$1\" sh -c '$build'" \
    --customize-hook="copy-out /build/openvswitch/vswitchd/ovs-vswitchd $out" \
    --customize-hook="copy-out /build/openvswitch/utilities/usdt-scripts/upcall_monitor.py $out" \
    "$suite" /dev/null "$mirror"
monitor=$out/upcall_monitor.py
sed -i -E 's/^( +)unsigned char (pkt|key)\[/\1u8 \2[/' "$monitor"
[[ $(grep -cE '^ +u8 (pkt|key)\[' "$monitor") == 2 && $(grep -c 'unsigned char' "$monitor") == 0 ]] ||
    { echo "build-ovs-usdt: upcall_monitor.py's event fields are not the ones this script knows" >&2; exit 1; }
echo "$version" >"$out/version"
echo "build-ovs-usdt: ovs-vswitchd $version with USDT probes built in $(($(date +%s) - start)) s"
