"""ovstop.ebpf."""
