"""Scan results: pydantic models written by ``richchat scan --json`` and used by ``join``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from richchat.core.scanner.progress import ScanProgress

__all__ = [
    "HttpInfo",
    "PortResult",
    "PortState",
    "RichchatInfo",
    "ScanMethod",
    "ScanProgress",
    "ScanReport",
    "TlsInfo",
]

PortState = Literal["open", "closed", "filtered"]
ScanMethod = Literal["connect", "syn"]


class RichchatInfo(BaseModel):
    """What a richchat server said in its ``HELLO`` answer."""

    model_config = ConfigDict(frozen=True)

    server_name: str | None = None
    agent: str = Field(description="server software and version, e.g. richchat-server/0.1.0")
    protocol: int = 1
    users: int | None = None
    tls: bool = False
    #: the TLS key's fingerprint (SHA256:...), as presented in the handshake
    fingerprint: str | None = None
    features: tuple[str, ...] = ()


class TlsInfo(BaseModel):
    """What a TLS service showed in the handshake (no certificate is checked)."""

    model_config = ConfigDict(frozen=True)

    version: str = Field(description="the protocol version agreed, e.g. TLSv1.3")
    cipher: str | None = None
    subject: str | None = Field(default=None, description="the certificate's subject")
    fingerprint: str | None = Field(
        default=None, description="SHA256:... of the certificate's public key")


class HttpInfo(BaseModel):
    """What an HTTP(S) service answered to ``GET /``."""

    model_config = ConfigDict(frozen=True)

    scheme: Literal["http", "https"]
    status: int
    reason: str | None = None
    server: str | None = None
    title: str | None = None


class PortResult(BaseModel):
    """One open port and what is listening there."""

    model_config = ConfigDict(frozen=True)

    port: int = Field(ge=1, le=65535)
    state: PortState = "open"
    service: str | None = Field(
        default=None, description="richchat, ssh, http, https, smtp, ftp, irc, ... or None"
    )
    joinable: bool = False
    banner: str | None = None
    richchat: RichchatInfo | None = None
    http: HttpInfo | None = None
    tls: TlsInfo | None = None
    rtt_ms: float | None = None


class ScanReport(BaseModel):
    """The result of one scan of one host."""

    host: str = Field(description="the host as given")
    address: str = Field(description="the address scanned")
    family: Literal["ipv4", "ipv6"]
    method: ScanMethod
    ports_scanned: int = Field(
        description="ports with a known state; fewer than requested if interrupted"
    )
    ports_requested: int | None = Field(default=None, description="ports asked for")
    open: list[PortResult] = Field(default_factory=list)
    closed: int = 0
    filtered: list[int] = Field(
        default_factory=list, description="ports that never answered, even after a retry"
    )
    self_connects: int = Field(
        default=0, description="loopback connects that reached their own socket (not reported)"
    )
    started_at: datetime
    duration_s: float = 0.0
    srtt_ms: float | None = Field(default=None, description="smoothed round-trip time")
    interrupted: bool = False

    @property
    def joinable(self) -> list[PortResult]:
        return [p for p in self.open if p.joinable]

    def port(self, number: int) -> PortResult | None:
        for p in self.open:
            if p.port == number:
                return p
        return None

    def state_of(self, number: int) -> PortState:
        if self.port(number) is not None:
            return "open"
        if number in self.filtered:
            return "filtered"
        return "closed"
