/* Shared part of ovstop's OVS probes: the event record, the event channel with sampling and
 * rate limiting, the counters, and the packet-head hash that correlates upcalls across probes.
 *
 * The loader puts this file, then the hook-group files it needs, into one program text so that they
 * share these maps (the groups' own #include of it is then a no-op; bcc rewrites map calls such as
 * counters.lookup() only in that main text, never in included files). Settings the loader passes as cflags:
 *   OVSTOP_RINGBUF=1       use BPF_RINGBUF_OUTPUT (Linux >= 5.8), else a perf buffer
 *   OVSTOP_RINGBUF_PAGES   ring/perf buffer size in pages
 * Sampling (1-in-N) and the per-second rate limit are read at run time from map `settings`.
 */
#ifndef OVSTOP_OVS_COMMON_H
#define OVSTOP_OVS_COMMON_H

#include <uapi/linux/ptrace.h>
#include <linux/skbuff.h>
#include <linux/sched.h>
#include <linux/bitops.h>
#include <uapi/linux/openvswitch.h>
#include "ovs_layout.h"

#ifndef OVSTOP_RINGBUF_PAGES
#define OVSTOP_RINGBUF_PAGES 64
#endif

/* Event types, in the order of ovstop.ebpf.decode.EVENT_TYPES. */
#define EV_UPCALL 1
#define EV_UPCALL_ENQUEUE 2
#define EV_UPCALL_RETURN 3
#define EV_RECV_UPCALL 4
#define EV_FLOW_OPERATION 5
#define EV_ACTION_EXECUTE 6
#define EV_FLOW_LOOKUP 7

/* Probe kinds, in the order of ovstop.ebpf.decode.PROBE_TYPES. */
#define PROBE_KPROBE 1
#define PROBE_KRETPROBE 2
#define PROBE_RAW_TRACEPOINT 3
#define PROBE_USDT 4
#define PROBE_FEXIT 5

#ifndef OVSTOP_FEXIT_LOOKUP
#define OVSTOP_FEXIT_LOOKUP 0
#endif

/* One record for every event type; ovstop.ebpf.decode.RawEvent mirrors it field by field. */
struct ovstop_event {
	u64 ts;
	u64 upcall_ts;
	u64 flow;
	u64 sf_acts;
	u64 batch_ts;
	u64 key_size;
	u32 pid;
	u32 tgid;
	u32 cpu;
	u32 upcall_cpu;
	u32 type;
	u32 probe;
	u32 port;
	u32 queue_id;
	s32 ret;
	u32 recirc_id;
	u32 ufid[4];
	u32 n_mask_hit;
	u32 n_cache_hit;
	u32 action;
	u32 action_arg;
	u32 ct_flags;
	u32 upcall_type;
	u32 pkt_size;
	u32 batch_idx;
	u16 ct_zone;
	u16 nat_min_port;
	u16 nat_max_port;
	u8 cmd;
	u8 has_queue_id;
	u8 op_type;
	u8 pad[7];
	u8 nat_min_addr[16];
	u8 nat_max_addr[16];
	char comm[16];
};
_Static_assert(sizeof(struct ovstop_event) == 200, "ovstop.ebpf.decode.RawEvent expects 200 bytes");

struct ovstop_settings {
	u32 sample_every;	/* emit 1 event in N; 0 or 1 = every event */
	u32 max_per_sec;	/* events per second over all CPUs; 0 = unlimited */
};

struct ovstop_rate {
	u64 second;
	u64 count;
};

/* Counter slots, in the order of ovstop.ebpf.decode.COUNTERS. */
#define CNT_LOST 0
#define CNT_SAMPLED_OUT 1
#define CNT_MAX 2

BPF_ARRAY(settings, struct ovstop_settings, 1);
BPF_ARRAY(rate, struct ovstop_rate, 1);
BPF_PERCPU_ARRAY(sample_ctr, u64, 1);
BPF_PERCPU_ARRAY(counters, u64, CNT_MAX);

#if OVSTOP_RINGBUF
BPF_RINGBUF_OUTPUT(events, OVSTOP_RINGBUF_PAGES);
#else
BPF_PERF_OUTPUT(events);
BPF_PERCPU_ARRAY(event_scratch, struct ovstop_event, 1);
#endif

static __always_inline void count(u32 slot)
{
	u64 *v = counters.lookup(&slot);
	if (v)
		(*v)++;
}

/* Whether the sampling and rate-limit settings let one more event through. */
static __always_inline int event_allowed(u64 now)
{
	u32 zero = 0;
	struct ovstop_settings *s = settings.lookup(&zero);
	u64 *ctr = sample_ctr.lookup(&zero);
	struct ovstop_rate *r = rate.lookup(&zero);

	if (!s || !ctr || !r)
		return 0;
	if (s->sample_every > 1) {
		u64 n = (*ctr)++;
		if (n % s->sample_every) {
			count(CNT_SAMPLED_OUT);
			return 0;
		}
	}
	if (s->max_per_sec) {
		u64 sec = now / 1000000000ULL;
		if (r->second != sec) {
			r->second = sec;
			r->count = 0;
		}
		if (__sync_fetch_and_add(&r->count, 1) >= s->max_per_sec) {
			count(CNT_SAMPLED_OUT);
			return 0;
		}
	}
	return 1;
}

/* Starts an event of `type` stamped `now`, or returns NULL when sampled out or the channel is
 * full (counted in `counters`). Must be paired with event_submit(). */
static __always_inline struct ovstop_event *event_begin(u64 now, u32 type, u32 probe)
{
	struct ovstop_event *e;
	u64 id = bpf_get_current_pid_tgid();

	if (!event_allowed(now))
		return NULL;
#if OVSTOP_RINGBUF
	e = events.ringbuf_reserve(sizeof(struct ovstop_event));
	if (!e) {
		count(CNT_LOST);
		return NULL;
	}
#else
	u32 zero = 0;
	e = event_scratch.lookup(&zero);
	if (!e)
		return NULL;
#endif
	__builtin_memset(e, 0, sizeof(*e));
	e->ts = now;
	e->type = type;
	e->probe = probe;
	e->cpu = bpf_get_smp_processor_id();
	e->pid = (u32)id;
	e->tgid = id >> 32;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	return e;
}

static __always_inline void event_submit(void *ctx, struct ovstop_event *e)
{
#if OVSTOP_RINGBUF
	events.ringbuf_submit(e, 0);
#else
	if (events.perf_submit(ctx, e, sizeof(*e)) < 0)
		count(CNT_LOST);
#endif
}

/* --- queue_id: Jenkins' lookup3 hash (the kernel's jhash(), initval 0) of the packet's first 64
 * bytes, zero-padded; Retis computes its queue_id the same way on both sides of an upcall. */
#define PACKET_HASH_LEN 64

#define JHASH_MIX(a, b, c) {                            \
	a -= c; a ^= rol32(c, 4); c += b;                   \
	b -= a; b ^= rol32(a, 6); a += c;                   \
	c -= b; c ^= rol32(b, 8); b += a;                   \
	a -= c; a ^= rol32(c, 16); c += b;                  \
	b -= a; b ^= rol32(a, 19); a += c;                  \
	c -= b; c ^= rol32(b, 4); b += a;                   \
}

#define JHASH_FINAL(a, b, c) {                          \
	c ^= b; c -= rol32(b, 14);                          \
	a ^= c; a -= rol32(c, 11);                          \
	b ^= a; b -= rol32(a, 25);                          \
	c ^= b; c -= rol32(b, 16);                          \
	a ^= c; a -= rol32(c, 4);                           \
	b ^= a; b -= rol32(a, 14);                          \
	c ^= b; c -= rol32(b, 24);                          \
}

/* jhash(words, 64, 0) unrolled for exactly 16 little-endian words: five 12-byte rounds, then the
 * last word goes into `a` before the final mix. */
static __always_inline u32 jhash_64(const u32 *w)
{
	u32 a, b, c;

	a = b = c = 0xdeadbeef + PACKET_HASH_LEN;
#pragma unroll
	for (int i = 0; i < 15; i += 3) {
		a += w[i];
		b += w[i + 1];
		c += w[i + 2];
		JHASH_MIX(a, b, c);
	}
	a += w[15];
	JHASH_FINAL(a, b, c);
	return c;
}

/* Hash of `len` bytes at `data` (kernel memory when `user` is 0, else user memory). */
static __always_inline u32 hash_head(const void *data, u64 len, int user)
{
	u32 w[PACKET_HASH_LEN / 4] = {};

	if (len >= PACKET_HASH_LEN) {
		if (user)
			bpf_probe_read_user(w, PACKET_HASH_LEN, data);
		else
			bpf_probe_read_kernel(w, PACKET_HASH_LEN, data);
		return jhash_64(w);
	}
	/* Hide the range from the compiler so that it keeps the mask the verifier needs. */
	asm volatile("" : "+r"(len));
	len &= PACKET_HASH_LEN - 1;
	if (len) {
		if (user)
			bpf_probe_read_user(w, len, data);
		else
			bpf_probe_read_kernel(w, len, data);
	}
	return jhash_64(w);
}

/* Hash of the linear head of an skb, as the enqueue side of an upcall sees it. */
static __always_inline u32 hash_skb(struct sk_buff *skb)
{
	unsigned char *data = NULL;
	u32 len = 0, data_len = 0;

	if (!skb)
		return 0;
	bpf_probe_read_kernel(&data, sizeof(data), &skb->data);
	bpf_probe_read_kernel(&len, sizeof(len), &skb->len);
	bpf_probe_read_kernel(&data_len, sizeof(data_len), &skb->data_len);
	return hash_head(data, len - data_len, 0);
}

static __always_inline u32 read_u32(const void *p)
{
	u32 v = 0;
	bpf_probe_read_kernel(&v, sizeof(v), p);
	return v;
}

/* --- Upcall context shared by the upcall, enqueue and return hooks. An upcall runs to completion
 * on one CPU with bottom halves disabled, so one slot per CPU holds the upcall in flight. */
struct upcall_ctx {
	u64 ts;
	u32 cpu;
	u32 in_port;
	u8 active;
};

BPF_PERCPU_ARRAY(inflight_upcall, struct upcall_ctx, 1);

#endif /* OVSTOP_OVS_COMMON_H */
