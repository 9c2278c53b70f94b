"""The dialects a client may speak, decided by its first line (docs/protocol.md).

* ``HELLO``: our own clients (``richchat join``/``send``/``scan``, the benchmark). Their first
  line is ``HELLO|version|agent``; they get every frame of the protocol, with message ids,
  rooms, incremental user-list updates.
* ``SEED``: clients written against the *seed protocol*, the four-frame protocol richchat
  started from (``MSG|``, ``SRV|``, ``ULIST|``, ``CMD_USER|``; see docs/protocol.md,
  "Compatibility contract"). Their first line is any other frame; they get only those frames
  (plus ``ERR``/``PONG``) and live in the lobby.
* ``RAW``: people with ``nc``/``ncat``/``telnet``. Their first line is not a frame, or they say
  nothing for a moment; they get human-readable lines and use slash commands.

``PENDING`` is a connection whose dialect is not known yet. The value indexes per-dialect
tables (renderers, counters), so keep them small consecutive integers.
"""

from __future__ import annotations

from enum import IntEnum


class Dialect(IntEnum):
    PENDING = 0
    HELLO = 1
    SEED = 2
    RAW = 3


#: the dialects that receive anything (PENDING gets nothing)
SPEAKING = (Dialect.HELLO, Dialect.SEED, Dialect.RAW)
