"""ovstop.sources."""
