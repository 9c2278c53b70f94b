"""TCP port scanner that knows which ports are joinable richchat servers.

``await scan(host, ports)`` returns a :class:`ScanReport`. The connect sweep runs on raw
non-blocking sockets and epoll (one forked worker per core for big scans; where there is no
epoll, on macOS and Windows, a slower ``selectors`` sweep with the same results), the optional SYN
sweep on a raw socket; open ports are then probed to tell richchat servers (joinable) from
SSH, SMTP, HTTP and the rest. See docs/scan.md.

The pydantic models are loaded on first use (``richchat.core.scanner.ScanReport``), so
starting a scan does not wait for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from richchat.core.scanner.api import resolve, scan
from richchat.core.scanner.ports import DEFAULT_PORT_SPEC, parse_ports
from richchat.core.scanner.progress import ScanProgress

if TYPE_CHECKING:
    from richchat.core.scanner.models import (
        HttpInfo,
        PortResult,
        PortState,
        RichchatInfo,
        ScanReport,
    )

_MODELS = {"HttpInfo", "PortResult", "PortState", "RichchatInfo", "ScanReport"}


def __getattr__(name: str) -> Any:
    if name in _MODELS:
        from richchat.core.scanner import models

        return getattr(models, name)
    raise AttributeError(name)


__all__ = [
    "DEFAULT_PORT_SPEC",
    "HttpInfo",
    "PortResult",
    "PortState",
    "RichchatInfo",
    "ScanProgress",
    "ScanReport",
    "parse_ports",
    "resolve",
    "scan",
]
