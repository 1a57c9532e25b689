"""ovstop.parsers."""
