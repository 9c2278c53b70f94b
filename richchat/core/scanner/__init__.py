"""TCP port scanner that knows which ports are joinable richchat servers.

``await scan(host, ports)`` returns a :class:`ScanReport`. The connect sweep runs on raw
non-blocking sockets and epoll (one forked worker per core for big scans), the optional SYN
sweep on a raw socket; open ports are then probed to tell richchat servers (joinable) from
SSH, SMTP, HTTP and the rest. See docs/scan.md.
"""

from richchat.core.scanner.api import resolve, scan
from richchat.core.scanner.models import (
    HttpInfo,
    PortResult,
    PortState,
    RichchatInfo,
    ScanProgress,
    ScanReport,
)
from richchat.core.scanner.ports import DEFAULT_PORT_SPEC, parse_ports

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
