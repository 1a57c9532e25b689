"""ovstop: a top for Open vSwitch."""

__version__ = "0.1.0"
