"""ovstop.events."""
