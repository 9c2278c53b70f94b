"""Port specifications in nmap's syntax: ``22,80,5000-6000``, ``-`` (all), ``-1024``, ``60000-``."""

from __future__ import annotations

from richchat.core.errors import UsageError
from richchat.core.protocol.text import is_digits

MAX_PORT = 65535
DEFAULT_PORT_SPEC = "1-65535"


def _port(text: str, spec: str) -> int:
    if not is_digits(text):
        raise UsageError(
            f"bad port spec {spec!r}: {text!r} is not a port number",
            hint="use e.g. -p 22,80,5000-6000 or -p- for all ports",
        )
    value = int(text)
    if not 1 <= value <= MAX_PORT:
        raise UsageError(
            f"bad port spec {spec!r}: port {value} is outside 1-65535",
            hint="use e.g. -p 22,80,5000-6000 or -p- for all ports",
        )
    return value


def parse_ports(spec: str) -> list[int]:
    """Parse a port spec into a sorted list of unique ports.

    ``-`` means every port (1-65535); an open range ``-N`` starts at 1 and ``N-`` ends at
    65535. Raises :class:`UsageError` with a clear message for anything else.
    """
    text = spec.strip()
    if not text:
        raise UsageError("empty port spec", hint="use e.g. -p 22,80,5000-6000 or -p- for all ports")
    items = text.split(",")
    ports: set[int] = set()
    for raw in items:
        item = raw.strip()
        if not item:
            raise UsageError(f"bad port spec {spec!r}: empty item between commas")
        if "-" in item:
            lo_s, _, hi_s = item.partition("-")
            if "-" in hi_s:
                raise UsageError(f"bad port spec {spec!r}: {item!r} has more than one '-'")
            lo = _port(lo_s, spec) if lo_s else 1
            hi = _port(hi_s, spec) if hi_s else MAX_PORT
            if lo > hi:
                raise UsageError(f"bad port spec {spec!r}: range {item!r} is backwards")
            if len(items) == 1:
                return list(range(lo, hi + 1))  # one range (-p- above all): already sorted
            ports.update(range(lo, hi + 1))
        else:
            ports.add(_port(item, spec))
    return sorted(ports)
