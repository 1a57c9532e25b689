/* Layout of the openvswitch module's private structures that ovstop's probes read.
 *
 * These structures live in net/openvswitch/{datapath,flow,conntrack}.{c,h}, which no kernel headers
 * package ships, so only the offsets ovstop reads are declared here.
 *
 * Supported kernels: Linux 5.14 (first with the openvswitch tracepoints) to 6.1, built with
 * CONFIG_NR_CPUS=8192 (Debian 12). The values were checked against the BTF of Debian's
 * linux-image-6.1.0-53-cloud-amd64 and 6.1.0-50-amd64 openvswitch.ko (pahole -C <struct> --btf_base vmlinux):
 *
 *   struct dp_upcall_info   { ... u32 portid @28; u8 cmd @32; ... }             (size 40)
 *   struct sw_flow_key      { ... struct { u32 priority; u32 skb_mark; u16 in_port; } phy @312 (packed);
 *                             ... u32 recirc_id @328; ... }                      (size 464)
 *   struct sw_flow          { ... struct sw_flow_key key @104; struct sw_flow_id id @568;
 *                             struct cpumask cpu_used_mask @592 (1024 bytes);
 *                             struct sw_flow_mask *mask @1616; struct sw_flow_actions *sf_acts @1624; }
 *   struct sw_flow_id       { u32 ufid_len @0; union { u32 ufid[4]; struct sw_flow_key *unmasked_key; } @8 }
 *   struct ovs_conntrack_info { ...; struct nf_conntrack_zone zone @8 (u16 id first);
 *                             u8 commit:1, nat:3, force:1 @24; u16 family @26; ...;
 *                             struct nf_nat_range2 range @112; }
 *
 * Linux 6.2 turned sw_flow.cpu_used_mask into a pointer, so sf_acts moves; every offset can be
 * overridden with -D<NAME>=<value> by the loader.
 */
#ifndef OVSTOP_OVS_LAYOUT_H
#define OVSTOP_OVS_LAYOUT_H

#ifndef OVS_UPCALL_INFO_PORTID
#define OVS_UPCALL_INFO_PORTID 28
#endif
#ifndef OVS_UPCALL_INFO_CMD
#define OVS_UPCALL_INFO_CMD 32
#endif
#ifndef OVS_KEY_IN_PORT
#define OVS_KEY_IN_PORT 320
#endif
#ifndef OVS_KEY_RECIRC_ID
#define OVS_KEY_RECIRC_ID 328
#endif
#ifndef OVS_FLOW_UFID_LEN
#define OVS_FLOW_UFID_LEN 568
#endif
#ifndef OVS_FLOW_UFID
#define OVS_FLOW_UFID 576
#endif
#ifndef OVS_FLOW_SF_ACTS
#define OVS_FLOW_SF_ACTS 1624
#endif
#ifndef OVS_CT_INFO_ZONE_ID
#define OVS_CT_INFO_ZONE_ID 8
#endif
#ifndef OVS_CT_INFO_BITS
#define OVS_CT_INFO_BITS 24
#endif
#ifndef OVS_CT_INFO_FAMILY
#define OVS_CT_INFO_FAMILY 26
#endif
#ifndef OVS_CT_INFO_RANGE
#define OVS_CT_INFO_RANGE 112
#endif

/* Bits of the ovs_conntrack_info byte at OVS_CT_INFO_BITS (little-endian bitfield order). */
#define OVS_CT_INFO_COMMIT_BIT 0x01
#define OVS_CT_INFO_NAT_SHIFT 1
#define OVS_CT_INFO_NAT_MASK 0x07
#define OVS_CT_INFO_FORCE_BIT 0x10

/* enum ovs_ct_nat (net/openvswitch/conntrack.c). */
#define OVS_CT_NAT_SRC 0x02
#define OVS_CT_NAT_DST 0x04

/* struct nf_nat_range2 (uapi/linux/netfilter/nf_nat.h) is stable: flags @0, min_addr @4,
 * max_addr @20, min_proto @36, max_proto @38. */
#define NAT_RANGE_FLAGS 0
#define NAT_RANGE_MIN_ADDR 4
#define NAT_RANGE_MAX_ADDR 20
#define NAT_RANGE_MIN_PROTO 36
#define NAT_RANGE_MAX_PROTO 38

#endif /* OVSTOP_OVS_LAYOUT_H */
