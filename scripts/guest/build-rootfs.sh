#!/bin/bash
# Build a QEMU guest used for real eBPF tests: a Debian root file system with Debian's kernel, the
# openvswitch module, bcc and a Python venv installed from wheels, packed into an ext4 image that the
# guest boots from (virtio-blk, opened with snapshot=on so every run starts from the same clean image).
# Two suites are built by CI: bookworm (Debian 12: Linux 6.1, OVS 3.1, Python 3.11) and trixie
# (Debian 13: Linux 6.12, OVS 3.5, Python 3.13). The Debian 12 image also carries ovs-vswitchd built with
# USDT probes from Debian's openvswitch-source (build-ovs-usdt.sh) in /opt/ovs-usdt, for the USDT scenario.
#
# Usage: scripts/guest/build-rootfs.sh [--suite bookworm|trixie] [DIR]
#        (DIR defaults to <repo>/.guest for bookworm, <repo>/.guest-<suite> otherwise)
# Each stage is cached under DIR and redone only when its inputs (package list, requirements) change.
# Needs root and the host packages: mmdebstrap e2fsprogs qemu-system-x86 (and network to Debian + PyPI).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
suite=bookworm
if [[ "${1:-}" == "--suite" ]]; then suite=${2:?"build-rootfs: --suite needs bookworm or trixie"}; shift 2; fi
case $suite in
    bookworm) default_out=$repo/.guest ;;
    trixie) default_out=$repo/.guest-trixie ;;
    *) echo "build-rootfs: unknown suite '$suite' (bookworm or trixie)" >&2; exit 2 ;;
esac
out=$(realpath -m "${1:-$default_out}")
mirror=${OVSTOP_GUEST_MIRROR:-http://deb.debian.org/debian}
pip=${OVSTOP_PIP:-$repo/.venv/bin/pip}

packages=(
    linux-image-amd64 linux-headers-amd64 initramfs-tools kmod
    openvswitch-switch python3-bpfcc python3 python3-pip python3-venv
    iproute2 iputils-ping procps util-linux mount
    python3-scapy python3-psutil
)
guest_init="$here/guest-init.sh"
requirements="$here/requirements.txt"

[[ $EUID -eq 0 ]] || { echo "build-rootfs: needs root (mmdebstrap, chroot, mke2fs -d keeping owners)" >&2; exit 1; }
mkdir -p "$out"

now() { date +%s%N; }
elapsed() { local ds=$(( ($(now) - $1) / 100000000 )); echo "$((ds / 10)).$((ds % 10))"; }
t_all=$(now)
stamp_ok() { [[ -f "$out/$1.stamp" && "$(cat "$out/$1.stamp")" == "$2" ]]; }

# 1. root file system (mmdebstrap), keyed on the package list and mirror.
rootfs_key=$(printf '%s\n' "$suite" "$mirror" "${packages[@]}" | sha256sum | cut -c1-16)
if ! stamp_ok rootfs "$rootfs_key"; then
    t=$(now)
    rm -rf "$out/rootfs" "$out/rootfs.stamp"
    mmdebstrap --variant=apt --include="$(IFS=,; echo "${packages[*]}")" \
        "$suite" "$out/rootfs" "$mirror"
    echo "$rootfs_key" >"$out/rootfs.stamp"
    echo "build-rootfs: rootfs built in $(elapsed "$t") s"
else
    echo "build-rootfs: rootfs cached ($rootfs_key)"
fi

# 1b. the kernel's BTF (vmlinux and the openvswitch module), for the host tests of ovstop's BTF reader.
if ! stamp_ok btf "$rootfs_key"; then
    rm -f "$out/btf.stamp"
    "$here/extract-btf.sh" "$out/rootfs" "$out/btf"
    echo "$rootfs_key" >"$out/btf.stamp"
fi

# 2. wheels (host pip, PyPI) and the guest venv installed from them inside the rootfs, keyed on the requirements.
venv_key=$( { echo "$rootfs_key"; cat "$requirements"; } | sha256sum | cut -c1-16)
if ! stamp_ok venv "$venv_key"; then
    t=$(now)
    rm -rf "$out/wheels" "$out/venv.stamp" "$out/rootfs/opt/ovstop-venv"
    "$pip" wheel --quiet --wheel-dir "$out/wheels" -r "$requirements"
    mkdir -p "$out/rootfs/tmp/wheels"
    cp "$out/wheels"/*.whl "$requirements" "$out/rootfs/tmp/wheels/"
    # --system-site-packages: the venv must see Debian's python3-bpfcc (bcc).
    chroot "$out/rootfs" python3 -m venv --system-site-packages /opt/ovstop-venv
    chroot "$out/rootfs" /opt/ovstop-venv/bin/pip install --quiet --no-index --find-links /tmp/wheels \
        -r /tmp/wheels/requirements.txt
    rm -rf "$out/rootfs/tmp/wheels"
    # The checkout is shared at the same path; make it importable without writing into it.
    site=$(echo "$out"/rootfs/opt/ovstop-venv/lib/python3*/site-packages)
    echo "$repo" >"$site/ovstop-checkout.pth"
    echo "$venv_key" >"$out/venv.stamp"
    echo "build-rootfs: wheels + guest venv in $(elapsed "$t") s"
else
    echo "build-rootfs: guest venv cached ($venv_key)"
fi

# 2b. Debian 12 only: ovs-vswitchd built with USDT probes from Debian's openvswitch-source (the guest's OVS
#     version) and OVS's upcall_monitor.py, for the USDT scenario; keyed on the rootfs and the build script.
usdt_key=none
if [[ $suite == bookworm ]]; then
    usdt_key=$( { echo "$rootfs_key"; cat "$here/build-ovs-usdt.sh"; } | sha256sum | cut -c1-16)
    if ! stamp_ok usdt "$usdt_key"; then
        rm -f "$out/usdt.stamp"
        "$here/build-ovs-usdt.sh" "$suite" "$out/rootfs" "$out/ovs-usdt"
        echo "$usdt_key" >"$out/usdt.stamp"
    else
        echo "build-rootfs: USDT ovs-vswitchd cached ($usdt_key)"
    fi
fi

# 3. kernel, initramfs and the ext4 image, redone whenever the rootfs, venv, USDT build, init or this script
#    changed. The USDT build goes to /opt/ovs-usdt in the image.
image_key=$( { echo "$venv_key" "$usdt_key"; cat "$guest_init" "$0"; } | sha256sum | cut -c1-16)
if ! stamp_ok image "$image_key"; then
    t=$(now)
    rm -f "$out/image.stamp"
    install -m 0755 "$guest_init" "$out/rootfs/sbin/ovstop-init"
    rm -rf "$out/rootfs/opt/ovs-usdt"
    if [[ $usdt_key != none ]]; then cp -a "$out/ovs-usdt" "$out/rootfs/opt/ovs-usdt"; fi
    mkdir -p "$out/rootfs$repo" "$out/rootfs/mnt/ovstop-ctl"
    kver=$(ls "$out/rootfs/lib/modules" | sort -V | tail -1)
    cp "$out/rootfs/boot/vmlinuz-$kver" "$out/vmlinuz"
    # A small initramfs that loads only what mounting the root image needs: Debian's default (MODULES=most,
    # 35 MB) costs about a second more of boot under emulation.
    conf="$out/rootfs/etc/initramfs-tools-ovstop"
    rm -rf "$conf"
    cp -a "$out/rootfs/etc/initramfs-tools" "$conf"
    sed -i 's/^MODULES=.*/MODULES=list/; s/^COMPRESS=.*/COMPRESS=gzip/' "$conf/initramfs.conf"
    printf '%s\n' virtio_pci virtio_blk ext4 >>"$conf/modules"
    chroot "$out/rootfs" mkinitramfs -d /etc/initramfs-tools-ovstop -o /tmp/initrd.img "$kver"
    mv "$out/rootfs/tmp/initrd.img" "$out/initrd.img"
    echo "$kver" >"$out/kernel-version"
    size_mb=$(( $(du -sm "$out/rootfs" | cut -f1) + 1024 ))
    rm -f "$out/rootfs.ext4"
    mke2fs -q -t ext4 -L ovstop-root -d "$out/rootfs" "$out/rootfs.ext4" "${size_mb}M" >/dev/null
    echo "$image_key" >"$out/image.stamp"
    echo "build-rootfs: kernel $kver, ext4 image ${size_mb} MiB in $(elapsed "$t") s"
else
    echo "build-rootfs: image cached ($image_key)"
fi
echo "build-rootfs: done in $(elapsed "$t_all") s -> $out"
