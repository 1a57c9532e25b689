#!/bin/bash
# Extract the BTF that a booted kernel would show in /sys/kernel/btf/{vmlinux,openvswitch} from a root file
# system, without booting it: vmlinux's .BTF section out of the compressed kernel in /boot/vmlinuz-*, and the
# openvswitch module's .BTF section (split BTF on vmlinux's) out of openvswitch.ko[.xz|.zst].
# The host-side BTF tests compare ovstop's reader with pahole on these files.
#
# Usage: scripts/guest/extract-btf.sh ROOTFS OUTDIR       (writes OUTDIR/vmlinux, OUTDIR/openvswitch)
# Needs: objcopy (binutils), xz, zstd.
set -euo pipefail
rootfs=$1 out=$2
kver=$(ls "$rootfs/lib/modules" | sort -V | tail -1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The bzImage carries vmlinux compressed (xz on Debian 12, zstd on Debian 13): find the stream and inflate it.
vmlinuz="$rootfs/boot/vmlinuz-$kver"
for fmt in xz zstd gzip; do
    case $fmt in
        xz) magic='\xfd7zXZ\x00' ;; zstd) magic='\x28\xb5\x2f\xfd' ;; gzip) magic='\x1f\x8b\x08' ;;
    esac
    off=$(LC_ALL=C grep -aboP -m1 "$magic" "$vmlinuz" | head -1 | cut -d: -f1) || true
    [[ -n "$off" ]] || continue
    # Trailing bytes after the stream make the decompressor complain; the ELF is complete by then.
    tail -c +"$((off + 1))" "$vmlinuz" | "$fmt" -dc >"$tmp/vmlinux" 2>/dev/null || true
    [[ "$(head -c 4 "$tmp/vmlinux" | od -An -tx1 | tr -d ' ')" == 7f454c46 ]] && break
done
[[ -s "$tmp/vmlinux" ]] || { echo "extract-btf: no vmlinux inside $vmlinuz" >&2; exit 1; }

ko=$(find "$rootfs/lib/modules/$kver/kernel/net/openvswitch" -name 'openvswitch.ko*' | head -1)
case $ko in
    *.xz) xz -dc "$ko" >"$tmp/openvswitch.ko" ;;
    *.zst) zstd -qdc "$ko" >"$tmp/openvswitch.ko" ;;
    *) cp "$ko" "$tmp/openvswitch.ko" ;;
esac

mkdir -p "$out"
objcopy --dump-section .BTF="$out/vmlinux" "$tmp/vmlinux" "$tmp/discard"
objcopy --dump-section .BTF="$out/openvswitch" "$tmp/openvswitch.ko" "$tmp/discard"
echo "$kver" >"$out/kernel-release"
echo "extract-btf: $kver: vmlinux $(stat -c %s "$out/vmlinux") B, openvswitch $(stat -c %s "$out/openvswitch") B -> $out"
