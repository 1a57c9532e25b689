"""``metrics/show`` (OVS builds with the metrics RFC): Prometheus text exposition, via prometheus_client."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from ovstop.errors import ParseError
from ovstop.parsers._text import require_text

COMMAND = "metrics/show"


@dataclass(frozen=True)
class RfcSample:
    """One exposition line: ``name`` with its suffix (``_bucket``, ``_sum`` …), labels sorted by name."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True)
class RfcFamily:
    name: str
    type: str
    help: str
    samples: tuple[RfcSample, ...]


def parse(text: str) -> tuple[RfcFamily, ...]:
    text = require_text(COMMAND, text)
    try:
        families = tuple(
            RfcFamily(
                name=fam.name,
                type=fam.type,
                help=fam.documentation,
                samples=tuple(RfcSample(s.name, tuple(sorted(s.labels.items())), float(s.value)) for s in fam.samples),
            )
            for fam in text_string_to_metric_families(text)
        )
    except Exception as e:  # prometheus_client raises ValueError/IndexError/KeyError on bad lines.
        raise ParseError(f"{COMMAND}: not Prometheus text exposition ({e})") from None
    if not any(f.samples for f in families):
        raise ParseError(f"{COMMAND}: no metric samples")
    return families
