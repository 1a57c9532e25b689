"""ovstop.export."""
