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
    #: the server's key is not the pinned one (or the one --fingerprint names), or a pinned
    #: server answered without TLS: possibly a man in the middle; nothing was sent
    KEY_MISMATCH = 16
    UNTRUSTED = 17  # an unknown server key was refused (send --strict, or the prompt cancelled)
    #: a TLS certificate or key file (server), or the known-servers file (client), is missing,
    #: unreadable or invalid
    BAD_FILE = 18
    FILE_TOO_LARGE = 19  # send --file: over the server's size limit or quota; no byte sent
    #: no such file (or expired), not yours to fetch (a token for another file), or no sharing
    FILE_UNAVAILABLE = 20
    FILE_CORRUPT = 21  # the bytes did not hash to the file's SHA-256: discarded
    FILE_ERROR = 22  # a local file cannot be read, or the download cannot be written
    #: server --redis: Redis cannot be reached, or refuses us, or the address is no Redis, at start
    REDIS_UNAVAILABLE = 23
    #: the server (a node of a cluster) lost its Redis: it takes no nickname now; try later
    DEGRADED = 24
    INTERRUPTED = 130  # Ctrl+C (128 + SIGINT)
