/* Offsets into the openvswitch module's private structures that ovstop's probes read.
 *
 * These structures live in net/openvswitch/{datapath,flow,conntrack}.{c,h}, which no kernel headers
 * package ships, and their layout changes between kernels (Linux 6.2 made sw_flow.cpu_used_mask a
 * pointer, 6.12 grew sw_flow_key). There are deliberately no defaults here: the loader
 * (ovstop.ebpf.layout) resolves every offset from the running kernel's BTF
 * (/sys/kernel/btf/openvswitch split on vmlinux) or a table verified on that exact kernel release, and
 * passes them as -D<NAME>=<value>. Functions whose offsets could not be resolved get 0 and are never
 * attached.
 *
 *   OVS_UPCALL_INFO_PORTID, _CMD   struct dp_upcall_info: u32 portid, u8 cmd
 *   OVS_KEY_IN_PORT, _RECIRC_ID    struct sw_flow_key: u16 phy.in_port, u32 recirc_id
 *   OVS_FLOW_UFID, _SF_ACTS        struct sw_flow: u32 id.ufid[4], struct sw_flow_actions *sf_acts
 *   OVS_CT_INFO_ZONE_ID, _BITS,    struct ovs_conntrack_info: u16 zone.id, the byte holding the commit:1,
 *   _FAMILY, _RANGE                nat:3, force:1 bitfields, u16 family, struct nf_nat_range2 range
 */
#ifndef OVSTOP_OVS_LAYOUT_H
#define OVSTOP_OVS_LAYOUT_H

#if !defined(OVS_UPCALL_INFO_PORTID) || \
    !defined(OVS_UPCALL_INFO_CMD) || \
    !defined(OVS_KEY_IN_PORT) || \
    !defined(OVS_KEY_RECIRC_ID) || \
    !defined(OVS_FLOW_UFID) || \
    !defined(OVS_FLOW_SF_ACTS) || \
    !defined(OVS_CT_INFO_ZONE_ID) || \
    !defined(OVS_CT_INFO_BITS) || \
    !defined(OVS_CT_INFO_FAMILY) || \
    !defined(OVS_CT_INFO_RANGE)
#error "openvswitch struct offsets are passed by the loader (ovstop.ebpf.layout): -DOVS_...=<offset>"
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
