"""ovstop.sandbox."""
