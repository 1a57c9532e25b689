/* Kernel drops by the openvswitch subsystem's drop reasons (Linux 6.4+ reasons in skb:kfree_skb),
 * counted in the kernel per (reason, input ifindex). Standalone: not part of the hook groups.
 *
 * The subsystem number, the reason shift and the offsets of sk_buff.dev and net_device.ifindex are
 * given at compile time from the running kernel's BTF (ovstop/ebpf/kernel_drops.py): numbering and
 * layouts change between kernels, and a guessed one would count the wrong thing. */
#include <uapi/linux/ptrace.h>

#if !defined(OVSTOP_DROP_SUBSYS) || !defined(OVSTOP_DROP_SHIFT) || !defined(OVSTOP_SKB_DEV) || \
    !defined(OVSTOP_NETDEV_IFINDEX)
#error "drop subsystem, shift and layout must come from BTF (ovstop/ebpf/kernel_drops.py)"
#endif

struct drop_key {
    u32 reason;
    u32 ifindex;
};

BPF_HASH(kernel_drops, struct drop_key, u64, 4096);

/* raw tracepoint kfree_skb(skb, location, reason[, rx_sk]) */
int drop_tp(struct bpf_raw_tracepoint_args *ctx)
{
    u32 reason = (u32)ctx->args[2];
    if ((reason >> OVSTOP_DROP_SHIFT) != OVSTOP_DROP_SUBSYS)
        return 0;
    struct drop_key key = {.reason = reason, .ifindex = 0};
    void *dev = NULL;
    bpf_probe_read_kernel(&dev, sizeof(dev), (char *)ctx->args[0] + OVSTOP_SKB_DEV);
    if (dev)
        bpf_probe_read_kernel(&key.ifindex, sizeof(key.ifindex), (char *)dev + OVSTOP_NETDEV_IFINDEX);
    kernel_drops.increment(key);
    return 0;
}
