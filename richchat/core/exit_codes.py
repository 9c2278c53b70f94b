"""Every exit status richchat uses, in one place (documented in the README)."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1  # unexpected internal error
    USAGE = 2  # bad option or argument (Typer/Click use 2 as well)
    CONNECTION_REFUSED = 3
    UNKNOWN_HOST = 4
    NICK_REFUSED = 5
    TIMEOUT = 6
    PROTOCOL = 7  # the peer is not a richchat server or broke the protocol
    PRIVILEGE = 8  # needs root / CAP_NET_RAW; partial results were still shown
    TOOL_MISSING = 9  # an external binary (nmap) is not installed; partial results shown
    ADDRESS_IN_USE = 10  # the server could not bind its address/port
    CONNECTION_LOST = 11
    DATA_DIR_LOCKED = 12  # server: another richchat server uses this data directory
    DATA_DIR = 13  # server: the data directory cannot be created, opened or written
    SERVER_FULL = 14  # the server is at its connection cap (--max-clients)
    LINES_REFUSED = 15  # send: some lines were refused (too long), the others delivered
    REDIS_UNAVAILABLE = 16  # server --redis: Redis cannot be reached or refuses us at start
    INTERRUPTED = 130  # Ctrl+C (128 + SIGINT)
