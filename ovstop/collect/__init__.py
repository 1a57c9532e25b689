"""ovstop.collect."""
