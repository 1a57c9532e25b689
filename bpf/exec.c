/* "action_execute": openvswitch:ovs_do_execute_action raw tracepoint, one event per datapath action
 * run on a packet. Output, recirc, ct (with NAT) and drop carry their argument. While the kernel
 * runs the actions of a packet that userspace sent back (OVS_PACKET_CMD_EXECUTE, seen through a
 * kprobe/kretprobe on ovs_packet_cmd_execute), the event carries that packet's queue_id. */
#include "ovs_common.h"
#include <uapi/linux/netfilter/nf_nat.h>

#ifndef OVS_ACTION_ATTR_DROP
#define OVS_ACTION_ATTR_DROP 24	/* Linux >= 6.4 */
#endif

/* Retis's ct flag bits (retis-events ovs.rs), so ct events read the same in both tools. */
#define R_CT_COMMIT (1 << 0)
#define R_CT_FORCE (1 << 1)
#define R_CT_IP4 (1 << 2)
#define R_CT_IP6 (1 << 3)
#define R_CT_NAT (1 << 4)
#define R_CT_NAT_SRC (1 << 5)
#define R_CT_NAT_DST (1 << 6)
#define R_CT_RANGE_MAP_IPS (1 << 7)
#define R_CT_RANGE_PROTO_SPECIFIED (1 << 8)
#define R_CT_RANGE_PROTO_RANDOM (1 << 9)
#define R_CT_RANGE_PERSISTENT (1 << 10)
#define R_CT_RANGE_PROTO_RANDOM_FULLY (1 << 11)

#define NFPROTO_IPV4_ 2
#define NFPROTO_IPV6_ 10

/* Tasks (pid_tgid) inside ovs_packet_cmd_execute. Keyed by task, not CPU: the command runs in
 * process context and may migrate before it disables bottom halves to run the actions. The value is
 * the packet's queue_id, taken at the command's first action (bit 32 set once taken): later actions
 * may run on a rewritten packet (NAT, set), whose head no longer hashes to the upcall's queue_id. */
BPF_HASH(cmd_execute, u64, u64, 1024);

/* static int ovs_packet_cmd_execute(struct sk_buff *skb, struct genl_info *info) */
int cmd_execute_entry(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u64 none = 0;

	cmd_execute.update(&id, &none);
	return 0;
}

int cmd_execute_return(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid();

	cmd_execute.delete(&id);
	return 0;
}

static __always_inline void fill_ct(struct ovstop_event *e, void *info)
{
	u8 bits = 0, nat;
	u16 family = 0;
	u32 range_flags = 0;

	bpf_probe_read_kernel(&e->ct_zone, sizeof(e->ct_zone), info + OVS_CT_INFO_ZONE_ID);
	bpf_probe_read_kernel(&bits, sizeof(bits), info + OVS_CT_INFO_BITS);
	bpf_probe_read_kernel(&family, sizeof(family), info + OVS_CT_INFO_FAMILY);
	if (bits & OVS_CT_INFO_COMMIT_BIT)
		e->ct_flags |= R_CT_COMMIT;
	if (bits & OVS_CT_INFO_FORCE_BIT)
		e->ct_flags |= R_CT_FORCE;
	if (family == NFPROTO_IPV4_)
		e->ct_flags |= R_CT_IP4;
	else if (family == NFPROTO_IPV6_)
		e->ct_flags |= R_CT_IP6;

	nat = (bits >> OVS_CT_INFO_NAT_SHIFT) & OVS_CT_INFO_NAT_MASK;
	if (!nat)
		return;
	e->ct_flags |= R_CT_NAT;
	if (nat & OVS_CT_NAT_SRC)
		e->ct_flags |= R_CT_NAT_SRC;
	if (nat & OVS_CT_NAT_DST)
		e->ct_flags |= R_CT_NAT_DST;

	info += OVS_CT_INFO_RANGE;
	bpf_probe_read_kernel(&range_flags, sizeof(range_flags), info + NAT_RANGE_FLAGS);
	if (range_flags & NF_NAT_RANGE_PERSISTENT)
		e->ct_flags |= R_CT_RANGE_PERSISTENT;
	if (range_flags & NF_NAT_RANGE_PROTO_RANDOM)
		e->ct_flags |= R_CT_RANGE_PROTO_RANDOM;
	if (range_flags & NF_NAT_RANGE_PROTO_RANDOM_FULLY)
		e->ct_flags |= R_CT_RANGE_PROTO_RANDOM_FULLY;
	if (range_flags & NF_NAT_RANGE_MAP_IPS) {
		e->ct_flags |= R_CT_RANGE_MAP_IPS;
		bpf_probe_read_kernel(e->nat_min_addr, 16, info + NAT_RANGE_MIN_ADDR);
		bpf_probe_read_kernel(e->nat_max_addr, 16, info + NAT_RANGE_MAX_ADDR);
	}
	if (range_flags & NF_NAT_RANGE_PROTO_SPECIFIED) {
		e->ct_flags |= R_CT_RANGE_PROTO_SPECIFIED;
		bpf_probe_read_kernel(&e->nat_min_port, 2, info + NAT_RANGE_MIN_PROTO);
		bpf_probe_read_kernel(&e->nat_max_port, 2, info + NAT_RANGE_MAX_PROTO);
	}
}

/* TP_PROTO(struct datapath *dp, struct sk_buff *skb, struct sw_flow_key *key,
 *          const struct nlattr *a, int rem) */
int exec_tp(struct bpf_raw_tracepoint_args *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	struct sk_buff *skb = (struct sk_buff *)ctx->args[1];
	void *key = (void *)ctx->args[2];
	void *attr = (void *)ctx->args[3];
	struct ovstop_event *e;
	u16 nla_type = 0;
	void *data;

	if (!attr || !key)
		return 0;
	e = event_begin(bpf_ktime_get_ns(), EV_ACTION_EXECUTE, PROBE_RAW_TRACEPOINT);
	if (!e)
		return 0;
	bpf_probe_read_kernel(&nla_type, sizeof(nla_type), attr + offsetof(struct nlattr, nla_type));
	e->action = nla_type & NLA_TYPE_MASK;
	e->recirc_id = read_u32(key + OVS_KEY_RECIRC_ID);
	data = attr + NLA_HDRLEN;
	if (e->action == OVS_ACTION_ATTR_OUTPUT || e->action == OVS_ACTION_ATTR_RECIRC ||
	    e->action == OVS_ACTION_ATTR_DROP)
		e->action_arg = read_u32(data);
	else if (e->action == OVS_ACTION_ATTR_CT)
		fill_ct(e, data);
	u64 *queue = cmd_execute.lookup(&id);
	if (queue) {
		if (!(*queue >> 32))
			*queue = (1ULL << 32) | hash_skb(skb);
		e->queue_id = (u32)*queue;
		e->has_queue_id = 1;
	}
	event_submit(ctx, e);
	return 0;
}
