"""ovstop.model."""
