"""The known-servers file: which key each TLS chat server had when we first met it.

One pin per line, ``HOST:PORT FINGERPRINT FIRST-SEEN``, like SSH's ``known_hosts``::

    # richchat known servers: HOST:PORT FINGERPRINT FIRST-SEEN (see docs/security.md)
    chat.lan:5050 SHA256:3q2+7w8Bf1mXxVv0C9Ez4Y5mQb1lJt8sJd5pQk2n8aA 2026-05-10T09:12:44Z
    [fd00::5]:5050 SHA256:Wm1vC0xk3gQd3mYb4pQFf0Xk1a5p8cYtT8s6bJm2y3E 2026-05-11T14:02:10Z

* Where: ``known_servers`` in the user's config directory (platformdirs; on Linux
  ``~/.config/richchat/known_servers``), or ``--known-servers FILE`` /
  ``RICHCHAT_KNOWN_SERVERS``.
* The key is the address as the user gave it, normalised: host names lower-case without a
  trailing dot, IP addresses in their canonical form (``[::1]``, not ``[0:0::1]``). The same
  server reached by another name or address is another entry: pinned the first time it is
  met that way (the prompt then says which other addresses already trust that key).
* Blank lines and ``#`` comments are kept when the file is rewritten. A line that is not a
  pin, or a second pin for one address, makes the whole file unusable (an error naming the
  line): guessing which pin holds would defeat the point of pinning.
* Writes are atomic (a temporary file renamed over the old one) under an exclusive lock on
  ``known_servers.lock``, so ``richchat send`` runs in parallel never lose a pin. The file
  is created with mode 0600 (it lists the servers you talk to).
* A symbolic link (dotfiles kept in a repository) stays one: the new file replaces the
  link's target, from a temporary file in the target's directory (a rename is atomic within
  one file system only), never the link itself. A target that is not a regular file (a link
  to /dev/null) or is read-only is never replaced: the write is refused.
* Lines end at ``\n``, ``\r\n`` or ``\r`` only; a UTF-8 byte-order mark is ignored.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from richchat.core.errors import BadFileError, UsageError
from richchat.core.protocol.text import is_digits
from richchat.core.trust.fingerprint import parse_fingerprint

ENV_VAR = "RICHCHAT_KNOWN_SERVERS"
FILE_NAME = "known_servers"
HEADER = "# richchat known servers: HOST:PORT FINGERPRINT FIRST-SEEN (see docs/security.md)"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_LINE_END = re.compile(r"\r\n|\r|\n")
#: the largest file read (about 600,000 pins)
MAX_FILE_BYTES = 64 << 20


def default_path() -> Path:
    """``known_servers`` in the platform's user config directory."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("richchat", appauthor=False)) / FILE_NAME


def resolve_path(path: Path | None = None) -> Path:
    """``path`` if given, else ``$RICHCHAT_KNOWN_SERVERS``, else :func:`default_path`."""
    if path is not None:
        return path
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else default_path()


def normalise_host(host: str) -> str:
    """The host part of a pin key: an IP address in canonical form, a name lower-case."""
    host = host.strip().strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).compressed + (
            "%" + host.split("%", 1)[1] if "%" in host else ""
        )
    except ValueError:
        return host.lower().rstrip(".")


def pin_key(host: str, port: int) -> str:
    """``host:port`` (``[v6]:port``) as written in the file."""
    host = normalise_host(host)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _split_key(text: str) -> tuple[str, int]:
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
        if ":" in host:
            sep = ""  # an IPv6 address without brackets: ambiguous
    if not sep or not host or not is_digits(port) or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT ([ADDRESS]:PORT for IPv6)")
    return host, int(port)


@dataclass(frozen=True)
class Pin:
    """One line of the file."""

    host: str
    port: int
    fingerprint: str
    first_seen: str  # ISO 8601, UTC, e.g. 2026-05-10T09:12:44Z

    @property
    def key(self) -> str:
        return pin_key(self.host, self.port)

    def line(self) -> str:
        return f"{self.key} {self.fingerprint} {self.first_seen}"


def now_text() -> str:
    return datetime.now(timezone.utc).strftime(_TIME_FORMAT)


def parse_line(line: str) -> Pin | None:
    """The pin on ``line``; None for a blank line or a comment; ValueError if malformed."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    fields = text.split()
    if len(fields) != 3:
        raise ValueError("expected HOST:PORT FINGERPRINT FIRST-SEEN")
    host, port = _split_key(fields[0])
    fingerprint = parse_fingerprint(fields[1])
    try:
        datetime.strptime(fields[2], _TIME_FORMAT)
    except ValueError:
        raise ValueError(f"{fields[2]!r} is not a date like 2026-05-10T09:12:44Z") from None
    return Pin(normalise_host(host), port, fingerprint, fields[2])


class KnownServers:
    """The known-servers file at ``path`` (read on each call: other processes may write it)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = resolve_path(path)

    # ------------------------------------------------------------------ reading

    def _read(self) -> list[tuple[str, Pin | None]]:
        """Every line with its pin (None for blank lines and comments)."""
        try:
            # O_NONBLOCK: a FIFO in the file's place is opened at once and refused below (a
            # plain open waited for a writer that never came: the command hung for good)
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            try:
                fh = os.fdopen(fd, "rb")
            except OSError:  # a directory: fdopen refuses it, and the descriptor is ours
                os.close(fd)
                raise
            with fh:
                mode = os.fstat(fh.fileno()).st_mode
                if stat.S_ISFIFO(mode):  # (a socket cannot be opened at all: ENXIO)
                    raise self._bad(
                        "not a regular file (a FIFO)",
                        hint="name a regular file (--known-servers, RICHCHAT_KNOWN_SERVERS)")
                # bounded: a link to /dev/zero, or a huge file named by mistake, was read
                # whole into memory (all of it, or MemoryError)
                data = fh.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                raise self._bad(f"too large (over {MAX_FILE_BYTES >> 20} MiB): not a "
                                "known-servers file")
            # utf-8-sig: a byte-order mark (Windows Notepad writes one) is no part of the
            # first line; read as its host name, it made the first pin never match
            text = data.decode("utf-8-sig")
        except FileNotFoundError:
            return []
        except UnicodeDecodeError:
            raise self._bad("not a text file (invalid UTF-8)") from None
        except IsADirectoryError:
            raise self._bad("it is a directory") from None
        except OSError as exc:
            raise self._bad(f"cannot be read: {exc.strerror or exc}") from None
        lines: list[tuple[str, Pin | None]] = []
        seen: dict[str, int] = {}
        # only \n, \r\n and \r end a line: splitlines() also split at form feeds (Emacs page
        # breaks), vertical tabs, NEL, U+2028..., which no editor shows as a new line
        split = _LINE_END.split(text)
        if split[-1] == "":
            split.pop()  # after the last line's end
        for number, line in enumerate(split, 1):
            try:
                pin = parse_line(line)
            except ValueError as exc:
                raise self._bad(f"line {number} ({line.strip()[:60]!r}): {exc}",
                                hint="fix or delete that line") from None
            if pin is not None:
                if pin.key in seen:
                    raise self._bad(
                        f"line {number}: {pin.key} is pinned twice (also on line "
                        f"{seen[pin.key]})", hint="delete the pin that is wrong")
                seen[pin.key] = number
            lines.append((line, pin))
        return lines

    def _bad(self, what: str, hint: str | None = None) -> BadFileError:
        return BadFileError(f"known-servers file {self.path}: {what}", hint=hint)

    def pins(self) -> list[Pin]:
        return [pin for _, pin in self._read() if pin is not None]

    def get(self, host: str, port: int) -> Pin | None:
        key = pin_key(host, port)
        return next((p for p in self.pins() if p.key == key), None)

    def with_fingerprint(self, fingerprint: str) -> list[Pin]:
        """Every address pinned to this key (the same server under other names)."""
        return [p for p in self.pins() if p.fingerprint == fingerprint]

    # ------------------------------------------------------------------ writing

    def add(self, host: str, port: int, fingerprint: str, *, replace: bool = False) -> Pin:
        """Pin ``fingerprint`` for ``host:port``; return the pin now in the file.

        An existing pin with the same key is kept (and returned) unless ``replace``; an
        existing pin with another key is an error unless ``replace``.
        """
        fingerprint = parse_fingerprint(fingerprint)
        key = pin_key(host, port)
        with self._locked():
            lines = self._read()
            for i, (_, pin) in enumerate(lines):
                if pin is None or pin.key != key:
                    continue
                if pin.fingerprint == fingerprint:
                    return pin
                if not replace:
                    raise KeyError(pin)
                new = Pin(pin.host, pin.port, fingerprint, now_text())
                lines[i] = (new.line(), new)
                self._write(lines)
                return new
            new = Pin(normalise_host(host), port, fingerprint, now_text())
            try:
                readable = parse_line(new.line()) == new
            except ValueError:
                readable = False
            if not readable:  # a host that would break the file (a space, a line break)
                raise UsageError(f"cannot pin {host!r}: not a host name or address")
            if not lines:
                lines.append((HEADER, None))
            lines.append((new.line(), new))
            self._write(lines)
            return new

    def forget(self, host: str, port: int) -> Pin | None:
        """Remove the pin of ``host:port``; return it (None if there was none)."""
        key = pin_key(host, port)
        with self._locked():
            lines = self._read()
            kept = [(line, pin) for line, pin in lines if pin is None or pin.key != key]
            if len(kept) == len(lines):
                return None
            self._write(kept)
            return next(pin for _, pin in lines if pin is not None and pin.key == key)

    def _target(self) -> Path:
        """The file that holds the pins: through symbolic links (of links), even to a file not
        made yet. Refused if it is not a regular file: a device (a link to /dev/null) or a
        FIFO would be replaced by a regular file (as root, /dev/null itself)."""
        target = Path(os.path.realpath(self.path))
        try:
            mode = os.stat(target).st_mode
        except FileNotFoundError:
            return target
        except OSError as exc:
            raise self._bad(f"cannot be written: {exc.strerror or exc}") from None
        if stat.S_ISDIR(mode):
            raise self._bad("it is a directory")
        if not stat.S_ISREG(mode):
            raise self._bad(f"{target} is not a regular file (a device or a FIFO): it cannot "
                            "hold pins", hint="name a file with --known-servers or "
                            f"{ENV_VAR}")
        return target

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._target()  # before the lock file is made beside it
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise self._bad(f"cannot be written: {exc.strerror or exc}") from None
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            lock = open(lock_path, "a")  # noqa: SIM115
        except OSError as exc:
            raise self._bad(f"cannot be written: its lock file {lock_path} cannot be made: "
                            f"{exc.strerror or exc}") from None
        with lock:
            try:
                import fcntl
            except ImportError:  # Windows: no advisory locks; the rename is still atomic
                yield
                return
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _write(self, lines: list[tuple[str, Pin | None]]) -> None:
        text = "".join(line.rstrip("\r\n") + "\n" for line, _ in lines)
        target = self._target()
        if os.path.exists(target) and not os.access(target, os.W_OK):
            # a rename needs only the directory's permission: it would replace a file its
            # owner made read-only (no new pins) and make it writable
            raise self._bad("cannot be written: it is read-only",
                            hint=f"to pin new servers: chmod u+w {target}")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        except OSError as exc:
            raise self._bad(f"cannot be written: {exc.strerror or exc}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise self._bad(f"cannot be written: {exc.strerror or exc}") from None
