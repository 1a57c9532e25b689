"""ovstop.tui."""
