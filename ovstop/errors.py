"""Errors that ovstop reports to the user as one line, never as a traceback."""


class OvstopError(Exception):
    """Base class: the message is a complete, one-line explanation for an operator."""


class SourceError(OvstopError):
    """A data source (unixctl, OVSDB, eBPF, OVN) could not answer."""


class SourceOff(SourceError):
    """The source is not configured on this host (no OVN here, say): shown with its reason, not a failure."""


class ParseError(OvstopError):
    """A parser was handed text it does not understand."""
