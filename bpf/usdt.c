/* Userspace side of upcalls, through ovs-vswitchd's USDT probes (built with --enable-usdt-probes):
 * "recv_upcall" (dpif_recv:recv_upcall) and "flow_operation" (dpif_netlink_operate__:op_flow_put /
 * op_flow_execute). A handler thread receives a batch of upcalls, then issues the datapath
 * operations for them in the same order; per-thread batch state links each operation to the
 * queue_id of its upcall. */
#include "ovs_common.h"

#define UPCALL_MAX_BATCH 64

struct batch {
	u64 ts;
	u32 n;
	u32 next_put;
	u8 in_ops;
	u32 queue_ids[UPCALL_MAX_BATCH];
};

BPF_HASH(batches, u32, struct batch, 1024);
BPF_PERCPU_ARRAY(batch_init, struct batch, 1);

static __always_inline struct batch *thread_batch(u32 tid)
{
	u32 zero = 0;
	struct batch *b = batches.lookup(&tid);
	struct batch *init;

	if (b)
		return b;
	init = batch_init.lookup(&zero);
	if (!init)
		return NULL;
	batches.update(&tid, init);
	return batches.lookup(&tid);
}

/* recv_upcall(dpif->full_name, upcall->type, packet data, packet size, key, key_len) */
int usdt_recv_upcall(struct pt_regs *ctx)
{
	u64 now = bpf_ktime_get_ns();
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct batch *b = thread_batch(tid);
	struct ovstop_event *e;
	/* Each argument read into a variable of its size in the probe's note (bcc refuses any other size and
	 * leaves the variable untouched): upcall->type is an enum, dp_packet_size() a uint32_t. */
	u32 type = 0, size = 0;
	u64 data = 0, key_len = 0;
	u32 queue_id, idx;
	int bad;

	if (!b)
		return 0;
	bad = bpf_usdt_readarg(2, ctx, &type) | bpf_usdt_readarg(3, ctx, &data) |
	      bpf_usdt_readarg(4, ctx, &size) | bpf_usdt_readarg(6, ctx, &key_len);
	/* An unreadable packet gives no queue_id: a hash of nothing would link every upcall to one. */
	queue_id = bad ? 0 : hash_head((void *)data, size, 1);

	if (b->in_ops || !b->n) {
		b->ts = now;
		b->n = 0;
		b->next_put = 0;
		b->in_ops = 0;
	}
	idx = b->n;
	if (idx < UPCALL_MAX_BATCH) {
		b->queue_ids[idx] = queue_id;
		b->n = idx + 1;
	}

	e = event_begin(now, EV_RECV_UPCALL, PROBE_USDT);
	if (!e)
		return 0;
	e->upcall_type = type;
	e->pkt_size = size;
	e->key_size = key_len;
	e->queue_id = queue_id;
	e->has_queue_id = !bad;
	e->batch_ts = b->ts;
	e->batch_idx = idx;
	event_submit(ctx, e);
	return 0;
}

static __always_inline int flow_operation(struct pt_regs *ctx, u8 op_type, u32 queue_id, int known)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct batch *b = batches.lookup(&tid);
	struct ovstop_event *e;
	u32 idx = 0;

	if (!b)
		return 0;
	b->in_ops = 1;
	if (known) {
#pragma unroll
		for (int i = 0; i < UPCALL_MAX_BATCH; i++) {
			if (i < b->n && b->queue_ids[i] == queue_id) {
				idx = i;
				break;
			}
		}
		/* A put for this upcall, if any, came before; the next put is for a later upcall. */
		if (idx + 1 > b->next_put)
			b->next_put = idx + 1;
	} else {
		idx = b->next_put;
		if (idx >= b->n || idx >= UPCALL_MAX_BATCH)
			return 0;
		b->next_put = idx + 1;
		queue_id = b->queue_ids[idx];
	}

	e = event_begin(bpf_ktime_get_ns(), EV_FLOW_OPERATION, PROBE_USDT);
	if (!e)
		return 0;
	e->op_type = op_type;
	e->queue_id = queue_id;
	e->has_queue_id = 1;
	e->batch_ts = b->ts;
	e->batch_idx = idx;
	event_submit(ctx, e);
	return 0;
}

/* op_flow_put(dpif_netlink *, dpif_flow_put *, dpif_netlink_flow *, ofpbuf *request) */
int usdt_op_flow_put(struct pt_regs *ctx)
{
	return flow_operation(ctx, 0, 0, 0);
}

/* op_flow_execute(dpif_netlink *, dpif_execute *, packet data, packet size (uint32_t), ofpbuf *request) */
int usdt_op_flow_execute(struct pt_regs *ctx)
{
	u64 data = 0;
	u32 size = 0;

	if (bpf_usdt_readarg(3, ctx, &data) | bpf_usdt_readarg(4, ctx, &size))
		return 0;
	return flow_operation(ctx, 1, hash_head((void *)data, size, 1), 1);
}
