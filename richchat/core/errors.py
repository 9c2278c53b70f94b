"""Exception hierarchy. The CLI turns each into a one-line message and an exit status."""

from __future__ import annotations

from richchat.core.exit_codes import ExitStatus


class RichchatError(Exception):
    """Base class: a failure we can explain to the user in one line."""

    exit_status: ExitStatus = ExitStatus.ERROR
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__

    @property
    def line(self) -> str:
        """The whole text of the error line on stderr (after ``error: ``): the message and
        its hint in brackets. ``--json`` documents carry this, not the message alone."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(RichchatError):
    exit_status = ExitStatus.USAGE


class ConnectionRefusedRichchatError(RichchatError):
    exit_status = ExitStatus.CONNECTION_REFUSED


class UnknownHostError(RichchatError):
    exit_status = ExitStatus.UNKNOWN_HOST


class NickRefusedError(RichchatError):
    exit_status = ExitStatus.NICK_REFUSED

    def __init__(self, message: str, *, code: str = "name_invalid", hint: str | None = None):
        super().__init__(message, hint=hint)
        self.code = code


class TimeoutRichchatError(RichchatError):
    exit_status = ExitStatus.TIMEOUT


class ProtocolError(RichchatError):
    """The peer sent something that is not our protocol."""

    exit_status = ExitStatus.PROTOCOL


class ConnectionLostError(RichchatError):
    exit_status = ExitStatus.CONNECTION_LOST


class PrivilegeError(RichchatError):
    exit_status = ExitStatus.PRIVILEGE


class AddressInUseError(RichchatError):
    exit_status = ExitStatus.ADDRESS_IN_USE


class DataDirLockedError(RichchatError):
    exit_status = ExitStatus.DATA_DIR_LOCKED


class DataDirError(RichchatError):
    exit_status = ExitStatus.DATA_DIR


class ServerFullError(RichchatError):
    exit_status = ExitStatus.SERVER_FULL


class KeyMismatchError(RichchatError):
    """The server presented another key than the pinned one, or a pinned server answered
    without TLS. Raised before any chat byte is sent."""

    exit_status = ExitStatus.KEY_MISMATCH


class NoTlsFromPinnedError(KeyMismatchError):
    """A server whose key is pinned (or trusted for this session) answered without TLS: no
    key was shown at all, so the chat UI does not call it a changed key."""


class UntrustedServerError(RichchatError):
    """An unknown server key was not accepted (``--strict``, or the user said no)."""

    exit_status = ExitStatus.UNTRUSTED


class BadFileError(RichchatError):
    """A TLS certificate or key file, or the known-servers file, cannot be used."""

    exit_status = ExitStatus.BAD_FILE
class FileTooLargeError(RichchatError):
    exit_status = ExitStatus.FILE_TOO_LARGE


class FileUnavailableError(RichchatError):
    exit_status = ExitStatus.FILE_UNAVAILABLE


class FileCorruptError(RichchatError):
    exit_status = ExitStatus.FILE_CORRUPT


class FileAccessError(RichchatError):
    exit_status = ExitStatus.FILE_ERROR


class RedisUnavailableError(RichchatError):
    """``server --redis``: the cluster's Redis cannot be reached (or refuses us) at start."""

    exit_status = ExitStatus.REDIS_UNAVAILABLE


class ServerDegradedError(RichchatError):
    """A node of a cluster without its Redis refused our nickname for now (``ERR|degraded``)."""

    exit_status = ExitStatus.DEGRADED
