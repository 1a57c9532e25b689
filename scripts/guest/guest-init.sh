#!/bin/sh
# PID 1 of the ovstop test guest (installed as /sbin/ovstop-init, started with init=/sbin/ovstop-init after
# Debian's initramfs mounted the root image). No systemd: mount the kernel file systems, load the modules,
# mount the host's control share (tag "ctl": env + cmd written by tests/guest/vm.py) and the checkout (tag
# "repo"), run the command with output on the serial console, print the exit sentinel and power off.
export PATH=/opt/ovstop-venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb

mnt() { mountpoint -q "$3" || { mkdir -p "$3" && mount -t "$1" "$2" "$3"; }; }
poweroff_now() { sync; echo 1 >/proc/sys/kernel/sysrq; echo o >/proc/sysrq-trigger; sleep 60; }

mount -o remount,rw /
mnt proc proc /proc
mnt sysfs sysfs /sys
mnt devtmpfs devtmpfs /dev
mnt devpts devpts /dev/pts
mnt tmpfs tmpfs /run
mnt tmpfs tmpfs /tmp
mnt tracefs tracefs /sys/kernel/tracing
mnt debugfs debugfs /sys/kernel/debug
mnt bpf bpf /sys/fs/bpf
mnt cgroup2 cgroup2 /sys/fs/cgroup
exec </dev/null >/dev/console 2>&1

for m in virtio_pci 9pnet_virtio 9p openvswitch veth; do modprobe "$m" || echo "ovstop-init: modprobe $m failed"; done
opts=trans=virtio,version=9p2000.L,msize=524288,cache=loose
mkdir -p /mnt/ovstop-ctl
if ! mount -t 9p -o "$opts" ctl /mnt/ovstop-ctl; then
    echo "ovstop-init: no control share"; echo "OVSTOP-GUEST-EXIT=125"; poweroff_now
fi
. /mnt/ovstop-ctl/env
mkdir -p "$OVSTOP_REPO"
mount -t 9p -o "$opts" repo "$OVSTOP_REPO" || echo "ovstop-init: cannot mount the checkout at $OVSTOP_REPO"
ip link set lo up
hostname ovstop-guest
echo "OVSTOP-GUEST-BEGIN uptime=$(cut -d' ' -f1 /proc/uptime)"
cd "$OVSTOP_REPO" && sh /mnt/ovstop-ctl/cmd
rc=$?
echo "OVSTOP-GUEST-EXIT=$rc"
poweroff_now
