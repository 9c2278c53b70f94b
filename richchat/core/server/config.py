"""Server settings, with the defaults documented in the README and docs/protocol.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from richchat.core.constants import DEFAULT_BEACON_PORT, DEFAULT_PORT
from richchat.core.protocol.codec import MAX_LINE_BYTES
from richchat.core.protocol.text import sanitize_text

MiB = 1024 * 1024
#: file sharing defaults (README "Sharing files", docs/protocol.md "Files")
DEFAULT_FILE_MAX_SIZE = 100 * MiB
DEFAULT_FILE_QUOTA = 1024 * MiB
DEFAULT_FILE_RETENTION_DAYS = 7.0


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("richchat", appauthor=False)) / "server"


class ServerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "0.0.0.0"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    #: control characters (an ESC in ``--name``) neutralised once, here, so no dialect (raw
    #: netcat lines included), beacon or mDNS record ever carries them
    name: Annotated[str, AfterValidator(sanitize_text)] = Field(
        default="richchat", min_length=1, max_length=64
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    #: messages of history sent to a client on connect (per room)
    history: int = Field(default=50, ge=0, le=10_000)
    #: messages kept on disk per room; older ones are deleted (at most a billion: SQLite
    #: counts in 64 bits, and a retention beyond them failed every 1,000th write)
    retention: int = Field(default=10_000, ge=1, le=1_000_000_000)

    beacon: bool = True
    beacon_addrs: tuple[str, ...] | None = None  # None: every local IPv4 broadcast address
    beacon_port: int = Field(default=DEFAULT_BEACON_PORT, ge=1, le=65535)
    beacon_interval: float = Field(default=5.0, gt=0)
    mdns: bool = True

    max_clients: int = Field(default=10_000, ge=1)
    max_line: int = Field(default=MAX_LINE_BYTES, ge=64)
    #: per-connection token bucket: lines per second and burst size (0 = no flood control)
    #: (a finite number: HELLO announces it, and cannot say infinity)
    flood_rate: float = Field(default=10.0, ge=0, allow_inf_nan=False)
    flood_burst: int = Field(default=30, ge=1)
    #: bytes queued for one client before it is disconnected as too slow
    output_limit: int = Field(default=4 * 1024 * 1024, ge=1024)
    #: seconds of silence before a HELLO client is pinged (half) and then dropped (full)
    idle_timeout: float = Field(default=300.0, gt=0)
    #: seconds a protocol client may stay connected without registering a nickname
    register_timeout: float = Field(default=60.0, gt=0)
    #: seconds to wait for a client's first line before treating it as a raw (netcat) client
    raw_detect_delay: float = Field(default=0.4, ge=0)
    #: delay that coalesces user-list (ULIST) updates for seed-protocol clients
    ulist_delay: float = Field(default=0.25, ge=0)
    #: seconds graceful shutdown waits for clients before closing them hard
    shutdown_timeout: float = Field(default=3.0, gt=0)
    #: TLS on the chat port (see richchat.core.server.tls): a generated key in data_dir
    #: unless tls_cert and tls_key name your own files
    tls: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: seconds a connection may take to finish its TLS handshake before it is closed
    tls_handshake_timeout: float = Field(default=5.0, gt=0, le=600)
    #: give freed heap back to the OS after this many quiet seconds (0 = never; glibc only)
    heap_trim_quiet: float = Field(default=1.0, ge=0)

    @property
    def uses_tls(self) -> bool:
        """TLS on the chat port: ``--tls``, or your own certificate and key."""
        return self.tls or self.tls_cert is not None or self.tls_key is not None

    #: file sharing (stored in data_dir/files); off: CMD_SHARE/CMD_GET are refused
    files: bool = True
    #: the largest file accepted, in bytes (advertised in HELLO as files=)
    file_max_size: int = Field(default=DEFAULT_FILE_MAX_SIZE, ge=1)
    #: bytes all stored files may take together; the files shared longest ago make room
    file_quota: int = Field(default=DEFAULT_FILE_QUOTA, ge=1)
    #: seconds a file is kept after it was last shared (an interrupted upload: after its
    #: last byte)
    file_retention: float = Field(default=DEFAULT_FILE_RETENTION_DAYS * 86400, gt=0,
                                  le=36500 * 86400)
    #: speed limit of each transfer connection, bytes per second (0: none)
    file_rate: int = Field(default=0, ge=0)
    #: transfer connections at once
    max_transfers: int = Field(default=32, ge=1)
    #: seconds a transfer token waits for its connection
    transfer_token_ttl: float = Field(default=300.0, gt=0)
    #: seconds a transfer connection may stay silent (an upload) before it is closed
    transfer_idle_timeout: float = Field(default=60.0, gt=0)

    #: a cluster: this process is one node of the chat kept in this Redis (redis:// or
    #: rediss:// URL; None: the embedded backend, this process alone with SQLite)
    redis: str | None = None
    #: the Redis password when it is not in the URL (``RICHCHAT_REDIS_PASSWORD``)
    redis_password: str | None = Field(default=None, repr=False)
    #: the chat's name in that Redis (several chats may share one Redis); default: ``name``
    cluster: str | None = Field(default=None, min_length=1, max_length=64)

    @property
    def cluster_name(self) -> str | None:
        """The cluster this node belongs to (None: not a cluster)."""
        if self.redis is None:
            return None
        return self.cluster or self.name
