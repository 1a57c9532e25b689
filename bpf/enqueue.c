/* "upcall_enqueue": kprobe + kretprobe on queue_userspace_packet(), once per packet (or GSO
 * segment) put on the handler's netlink socket. queue_id is the packet-head hash that the
 * userspace side (recv_upcall) computes on the same bytes. */
#include "ovs_common.h"

struct enqueue_args {
	u64 skb;
	u64 info;
};

BPF_PERCPU_ARRAY(enqueue_args, struct enqueue_args, 1);

/* static int queue_userspace_packet(struct datapath *dp, struct sk_buff *skb,
 *     const struct sw_flow_key *key, const struct dp_upcall_info *upcall_info, uint32_t cutlen) */
int enqueue_entry(struct pt_regs *ctx)
{
	u32 zero = 0;
	struct enqueue_args *a = enqueue_args.lookup(&zero);

	if (!a)
		return 0;
	a->skb = PT_REGS_PARM2(ctx);
	a->info = PT_REGS_PARM4(ctx);
	return 0;
}

int enqueue_return(struct pt_regs *ctx)
{
	u32 zero = 0;
	struct enqueue_args *a = enqueue_args.lookup(&zero);
	struct upcall_ctx *uc = inflight_upcall.lookup(&zero);
	struct ovstop_event *e;
	void *info;

	if (!a || !uc || !a->info)
		return 0;
	info = (void *)a->info;
	e = event_begin(bpf_ktime_get_ns(), EV_UPCALL_ENQUEUE, PROBE_KRETPROBE);
	if (e) {
		if (uc->active) {
			e->upcall_ts = uc->ts;
			e->upcall_cpu = uc->cpu;
		}
		e->ret = (s32)PT_REGS_RC(ctx);
		e->port = read_u32(info + OVS_UPCALL_INFO_PORTID);
		bpf_probe_read_kernel(&e->cmd, sizeof(e->cmd), info + OVS_UPCALL_INFO_CMD);
		e->queue_id = hash_skb((struct sk_buff *)a->skb);
		e->has_queue_id = 1;
		event_submit(ctx, e);
	}
	a->info = 0;
	return 0;
}
