/* "flow_lookup": fexit, or kprobe + kretprobe, on ovs_flow_tbl_lookup_stats(). Every lookup is counted in
 * kernel maps (hits per UFID, misses per in_port and skb hash, masks and mask-cache hits); the
 * sampled events carry the flow, its actions and UFID, or flow 0 for a miss. */
#include "ovs_common.h"

struct lookup_args {
	u64 key;
	u64 n_mask_hit;
	u64 n_cache_hit;
	u32 skb_hash;
};

struct ufid_key {
	u32 ufid[4];
};

struct miss_key {
	u32 in_port;
	u32 skb_hash;
};

/* Totals, in the order of ovstop.ebpf.decode.LOOKUP_TOTALS. */
#define LK_HIT 0
#define LK_MISS 1
#define LK_MASK_HIT 2
#define LK_CACHE_HIT 3
#define LK_MAX 4

BPF_PERCPU_ARRAY(lookup_args, struct lookup_args, 1);
BPF_PERCPU_ARRAY(lookup_totals, u64, LK_MAX);
BPF_TABLE("lru_hash", struct ufid_key, u64, flow_hits, OVSTOP_FLOW_HITS_MAX);
BPF_TABLE("lru_hash", struct miss_key, u64, flow_misses, 4096);

static __always_inline void add_total(u32 slot, u64 n)
{
	u64 *v = lookup_totals.lookup(&slot);
	if (v)
		*v += n;
}

/* struct sw_flow *ovs_flow_tbl_lookup_stats(struct flow_table *tbl, const struct sw_flow_key *key,
 *                                           u32 skb_hash, u32 *n_mask_hit, u32 *n_cache_hit) */
int lookup_entry(struct pt_regs *ctx)
{
	u32 zero = 0;
	struct lookup_args *a = lookup_args.lookup(&zero);

	if (!a)
		return 0;
	a->key = PT_REGS_PARM2(ctx);
	a->skb_hash = (u32)PT_REGS_PARM3(ctx);
	a->n_mask_hit = PT_REGS_PARM4(ctx);
	a->n_cache_hit = PT_REGS_PARM5(ctx);
	return 0;
}

/* What a finished lookup adds: totals, the hit per ufid or the miss per in_port/hash, one event. */
static __always_inline int lookup_done(void *ctx, void *key, u32 skb_hash, void *n_mask_hit_ptr,
				       void *n_cache_hit_ptr, void *flow, u32 probe)
{
	struct ovstop_event *e;
	u32 n_mask_hit = 0, n_cache_hit = 0;
	u64 one = 1;
	struct ufid_key uk = {};

	if (n_mask_hit_ptr)
		bpf_probe_read_kernel(&n_mask_hit, sizeof(n_mask_hit), n_mask_hit_ptr);
	if (n_cache_hit_ptr)
		bpf_probe_read_kernel(&n_cache_hit, sizeof(n_cache_hit), n_cache_hit_ptr);
	add_total(LK_MASK_HIT, n_mask_hit);
	add_total(LK_CACHE_HIT, n_cache_hit);

	/* Counted with lookup/update, not .atomic_increment(): bcc 0.26 rewrites that wrongly for
	 * struct keys and the map stays empty. A lost race on the first insert drops one count. */
	if (flow) {
		u64 *n;

		add_total(LK_HIT, 1);
		bpf_probe_read_kernel(uk.ufid, sizeof(uk.ufid), flow + OVS_FLOW_UFID);
		n = flow_hits.lookup(&uk);
		if (n)
			__sync_fetch_and_add(n, 1);
		else
			flow_hits.update(&uk, &one);
	} else {
		struct miss_key mk = {};
		u16 in_port = 0;
		u64 *n;

		add_total(LK_MISS, 1);
		bpf_probe_read_kernel(&in_port, sizeof(in_port), key + OVS_KEY_IN_PORT);
		mk.in_port = in_port;
		mk.skb_hash = skb_hash;
		n = flow_misses.lookup(&mk);
		if (n)
			__sync_fetch_and_add(n, 1);
		else
			flow_misses.update(&mk, &one);
	}

	e = event_begin(bpf_ktime_get_ns(), EV_FLOW_LOOKUP, probe);
	if (!e)
		return 0;
	e->n_mask_hit = n_mask_hit;
	e->n_cache_hit = n_cache_hit;
	if (flow) {
		e->flow = (u64)flow;
		bpf_probe_read_kernel(&e->sf_acts, sizeof(e->sf_acts), flow + OVS_FLOW_SF_ACTS);
		__builtin_memcpy(e->ufid, uk.ufid, sizeof(e->ufid));
	}
	event_submit(ctx, e);
	return 0;
}

int lookup_return(struct pt_regs *ctx)
{
	u32 zero = 0;
	struct lookup_args *a = lookup_args.lookup(&zero);
	void *key;

	if (!a || !a->key)
		return 0;
	key = (void *)a->key;
	a->key = 0;
	return lookup_done(ctx, key, a->skb_hash, (void *)a->n_mask_hit, (void *)a->n_cache_hit,
			   (void *)PT_REGS_RC(ctx), PROBE_KRETPROBE);
}

#if OVSTOP_FEXIT_LOOKUP
/* fexit (bcc >= 0.28, kernel and module BTF): one trampoline that sees the arguments and the result,
 * instead of the kprobe + kretprobe pair above. bcc attaches it when the program loads. */
MODULE_KRETFUNC_PROBE(openvswitch, ovs_flow_tbl_lookup_stats, void *tbl, void *key, u32 skb_hash,
		      u32 *n_mask_hit, u32 *n_cache_hit, void *flow)
{
	return lookup_done(ctx, key, skb_hash, n_mask_hit, n_cache_hit, flow, PROBE_FEXIT);
}
#endif
