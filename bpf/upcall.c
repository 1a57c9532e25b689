/* Upcall hooks: "upcall" (openvswitch:ovs_dp_upcall raw tracepoint, or a kprobe on ovs_dp_upcall
 * on kernels without the tracepoint) and "upcall_return" (kretprobe ovs_dp_upcall), plus the
 * in-kernel upcall latency histogram (entry to return) per datapath in_port. */
#include "ovs_common.h"

/* log2 slots of the latency in ns, per in_port; each CPU counts in its own copy. */
struct latency_key {
	u32 in_port;
	u32 slot;
};

BPF_PERCPU_HASH(upcall_latency, struct latency_key, u64, 4096);
BPF_PERCPU_HASH(upcall_latency_sum, u32, u64, 1024);

static __always_inline int upcall_entry(void *ctx, void *key, void *info, u32 probe)
{
	u32 zero = 0;
	u64 now = bpf_ktime_get_ns();
	struct upcall_ctx *uc = inflight_upcall.lookup(&zero);
	struct ovstop_event *e;
	u16 in_port = 0;

	if (!uc || !info)
		return 0;
	if (key)
		bpf_probe_read_kernel(&in_port, sizeof(in_port), key + OVS_KEY_IN_PORT);
	uc->ts = now;
	uc->cpu = bpf_get_smp_processor_id();
	uc->in_port = in_port;
	uc->active = 1;

	e = event_begin(now, EV_UPCALL, probe);
	if (!e)
		return 0;
	e->port = read_u32(info + OVS_UPCALL_INFO_PORTID);
	bpf_probe_read_kernel(&e->cmd, sizeof(e->cmd), info + OVS_UPCALL_INFO_CMD);
	event_submit(ctx, e);
	return 0;
}

/* TP_PROTO(struct datapath *dp, struct sk_buff *skb, const struct sw_flow_key *key,
 *          const struct dp_upcall_info *upcall_info) */
int upcall_tp(struct bpf_raw_tracepoint_args *ctx)
{
	return upcall_entry(ctx, (void *)ctx->args[2], (void *)ctx->args[3], PROBE_RAW_TRACEPOINT);
}

/* int ovs_dp_upcall(struct datapath *dp, struct sk_buff *skb, const struct sw_flow_key *key,
 *                   const struct dp_upcall_info *upcall_info, uint32_t cutlen) */
int upcall_kprobe(struct pt_regs *ctx)
{
	return upcall_entry(ctx, (void *)PT_REGS_PARM3(ctx), (void *)PT_REGS_PARM4(ctx), PROBE_KPROBE);
}

int upcall_return(struct pt_regs *ctx)
{
	u32 zero = 0;
	u64 now = bpf_ktime_get_ns();
	struct upcall_ctx *uc = inflight_upcall.lookup(&zero);
	struct ovstop_event *e;
	struct latency_key lk = {};
	u64 delta, *sum, *count_ptr, one = 1;

	if (!uc || !uc->active)
		return 0;
	uc->active = 0;

	delta = now - uc->ts;
	lk.in_port = uc->in_port;
	lk.slot = bpf_log2l(delta);
	/* Not .increment(): bcc 0.26 rewrites it wrongly for struct keys (the map stays empty). */
	count_ptr = upcall_latency.lookup(&lk);
	if (count_ptr)
		(*count_ptr)++;
	else
		upcall_latency.update(&lk, &one);
	sum = upcall_latency_sum.lookup_or_try_init(&lk.in_port, &(u64){0});
	if (sum)
		*sum += delta;

	e = event_begin(now, EV_UPCALL_RETURN, PROBE_KRETPROBE);
	if (!e)
		return 0;
	e->upcall_ts = uc->ts;
	e->upcall_cpu = uc->cpu;
	e->ret = (s32)PT_REGS_RC(ctx);
	event_submit(ctx, e);
	return 0;
}
