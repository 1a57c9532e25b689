"""Errors that ovstop reports to the user as one line, never as a traceback."""


class OvstopError(Exception):
    """Base class: the message is a complete, one-line explanation for an operator."""


class SourceError(OvstopError):
    """A data source (unixctl, OVSDB, eBPF, OVN) could not answer."""


class SourceOff(SourceError):
    """The source is not configured on this host (no OVN here, say): shown with its reason, not a failure."""


class ParseError(OvstopError):
    """A parser was handed text it does not understand."""


def describe(exc: BaseException) -> str:
    """One line for an operator: an ovstop error's own message; for anything else (a bug, an OS error) its
    type too, since the message alone ("[Errno 28] No space left on device") may not say what failed."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OvstopError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
