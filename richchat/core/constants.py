"""Numbers and fixed texts of the protocol that several parts share, defined once.

Import-free on purpose (no pydantic, no asyncio): command modules read the defaults for their
``--help`` texts without paying for the protocol package.
"""

from __future__ import annotations

import re

from richchat import __version__

#: the chat server's TCP port when none is given
DEFAULT_PORT = 5050
#: UDP port of discovery beacons and active discovery queries
DEFAULT_BEACON_PORT = 50505
#: the version in ``HELLO|version|...``, beacons and the welcome line
PROTOCOL_VERSION = 1
#: a TLS key's fingerprint as servers announce it (``HELLO|...|fp=``, beacons, DNS-SD TXT):
#: ``SHA256:`` + 43 characters of unpadded base64 (richchat.core.trust.fingerprint)
FINGERPRINT_PATTERN = r"^SHA256:[A-Za-z0-9+/]{43}$"

_WELCOME_RE = re.compile(r"^(?:\*\*\* )?Welcome to (?P<name>.*?)\s*\(richchat[ )]")


def welcome_text(server_name: str) -> str:
    """The welcome every client gets first (``SRV|...``, or ``*** ...`` for netcat users)."""
    return f"Welcome to {server_name} (richchat {__version__}, protocol {PROTOCOL_VERSION})"


def welcome_server_name(line: str) -> str | None:
    """The server name in a welcome line (with or without the ``*** `` of netcat users, or the
    ``SRV|`` of a frame), or None when ``line`` is not a richchat welcome."""
    m = _WELCOME_RE.match(line.removeprefix("SRV|"))
    return m.group("name") if m else None
