"""C sources of ovstop's eBPF programs, compiled by bcc at run time (see ovstop/ebpf/program.py)."""
