"""`richchat server`: run the chat server."""

from __future__ import annotations

import os
import socket
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:
    from richchat.core.server import ChatServer

from richchat.core.constants import DEFAULT_BEACON_PORT, DEFAULT_PORT

MAX_NAME = 64  # ServerConfig.name's max_length (a test keeps them equal)
MAX_RETENTION = 1_000_000_000  # --retention: ServerConfig.retention's le (a test keeps them equal)
MAX_RETENTION_DAYS = 36500.0  # --file-retention: a hundred years (infinity overflowed)


class LogLevel(str, Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def _data_dir_path(value: str) -> Path:
    """``--data-dir ""`` (``--data-dir "$DIR"`` with DIR unset) is a mistake, not the current
    directory (which ``Path("")`` is): the history would land wherever the server was started."""
    if not value.strip():
        raise typer.BadParameter("is empty: give a directory (omit --data-dir for the default)")
    return Path(value)


def _ask_port() -> int:
    """The port, asked on the terminal; Ctrl+C (or Ctrl+D) there is an interrupt (exit 130),
    not click's "Aborted." with exit 1."""
    import contextlib

    from richchat.core.exit_codes import ExitStatus

    # The question goes to the terminal the answer comes from (stdin's), not to stdout, which
    # may be a pipe (`richchat server | grep listening`) or closed (`| true`).
    with contextlib.ExitStack() as stack:
        try:
            terminal = stack.enter_context(open(os.ttyname(sys.stdin.fileno()), "w"))
        except OSError:
            terminal = None
        if terminal is not None:
            stack.enter_context(contextlib.redirect_stdout(terminal))
        try:
            return int(typer.prompt("Port", default=DEFAULT_PORT, type=int))
        except typer.Abort:
            (terminal or sys.stderr).write("\n")  # end the prompt's line
            raise typer.Exit(int(ExitStatus.INTERRUPTED)) from None


def server(
    host: str = typer.Option("0.0.0.0", envvar="RICHCHAT_HOST", help="Address to listen on (:: for IPv6)."),
    port: Optional[int] = typer.Option(
        None, "--port", "-p", envvar="RICHCHAT_PORT", min=0, max=65535,
        help=f"TCP port (default {DEFAULT_PORT}; 0 picks a free one). Asked for when omitted on a terminal.",
    ),
    name: Optional[str] = typer.Option(
        None, envvar="RICHCHAT_NAME",
        help=f"Server name shown to clients and in discovery, at most {MAX_NAME} characters (default: host name).",
    ),
    data_dir: Optional[Path] = typer.Option(
        None, envvar="RICHCHAT_DATA_DIR", parser=_data_dir_path,
        help="Where history is stored, created if missing; one server per directory (default: the platform's user data dir).",
    ),
    history: int = typer.Option(50, envvar="RICHCHAT_HISTORY", min=0, max=10000, help="Messages of history sent on connect."),
    retention: int = typer.Option(10000, envvar="RICHCHAT_RETENTION", min=1, max=MAX_RETENTION, help="Messages kept on disk per room."),
    beacon: bool = typer.Option(True, "--beacon/--no-beacon", envvar="RICHCHAT_BEACON", help="Send UDP discovery beacons."),
    beacon_addr: Optional[list[str]] = typer.Option(
        None, "--beacon-addr", envvar="RICHCHAT_BEACON_ADDR",
        help="Beacon destination (repeatable; default: every local IPv4 broadcast address).",
    ),
    beacon_port: int = typer.Option(DEFAULT_BEACON_PORT, envvar="RICHCHAT_BEACON_PORT", min=1, max=65535, help="UDP port of beacons and discovery queries."),
    beacon_interval: float = typer.Option(5.0, envvar="RICHCHAT_BEACON_INTERVAL", min=0.1, help="Seconds between beacons."),
    mdns: bool = typer.Option(True, "--mdns/--no-mdns", envvar="RICHCHAT_MDNS", help="Advertise _richchat._tcp.local. via mDNS/DNS-SD."),
    tls: Optional[bool] = typer.Option(None, "--tls/--no-tls", envvar="RICHCHAT_TLS", show_default="no-tls", help="Encrypt the chat port with TLS; a key and self-signed certificate are made in the data dir on first start. --no-tls with --tls-cert/--tls-key is a usage error."),
    tls_cert: Optional[Path] = typer.Option(None, envvar="RICHCHAT_TLS_CERT", readable=False, help="Your own certificate (PEM) instead of the generated one; implies --tls, needs --tls-key."),
    tls_key: Optional[Path] = typer.Option(None, envvar="RICHCHAT_TLS_KEY", readable=False, help="The private key (PEM, unencrypted) of --tls-cert."),
    tls_handshake_timeout: float = typer.Option(5.0, envvar="RICHCHAT_TLS_HANDSHAKE_TIMEOUT", min=0.1, max=600, help="Seconds a connection may take to finish its TLS handshake before it is closed."),
    show_fingerprint: bool = typer.Option(False, "--show-fingerprint", help="Print the TLS key's fingerprint (SHA256:...) and exit; makes the key first if there is none."),
    max_clients: int = typer.Option(10000, envvar="RICHCHAT_MAX_CLIENTS", min=1, help="Connection cap; a client beyond it is told the server is full."),
    flood_rate: float = typer.Option(10.0, envvar="RICHCHAT_FLOOD_RATE", min=0, help="Lines per second per client (0: no flood control); announced in HELLO, richchat send paces itself to it."),
    flood_burst: int = typer.Option(30, envvar="RICHCHAT_FLOOD_BURST", min=1, help="Burst of lines allowed before throttling."),
    idle_timeout: float = typer.Option(300.0, envvar="RICHCHAT_IDLE_TIMEOUT", min=1, help="Seconds before a silent client is pinged, then dropped."),
    output_limit: str = typer.Option("4MiB", envvar="RICHCHAT_OUTPUT_LIMIT", help="Bytes queued for a client that does not read (stopped, stalled) before it is dropped as too slow; at least 1KiB."),
    files: bool = typer.Option(True, "--files/--no-files", envvar="RICHCHAT_FILES", help="Let users share files (stored in DATA_DIR/files)."),
    file_max_size: str = typer.Option("100MiB", envvar="RICHCHAT_FILE_MAX_SIZE", help="Largest file accepted (100MiB, 1G, bytes; at least 1 byte: --no-files turns sharing off); announced in HELLO, refused before a byte is sent. A --file-quota below it is the limit instead."),
    file_quota: str = typer.Option("1GiB", envvar="RICHCHAT_FILE_QUOTA", help="Space all shared files may take (at least 1 byte); the files shared longest ago are deleted to make room."),
    file_retention: float = typer.Option(7.0, envvar="RICHCHAT_FILE_RETENTION", min=0.0001, max=MAX_RETENTION_DAYS, help="Days a file is kept after it was last shared."),
    file_rate: str = typer.Option("0", envvar="RICHCHAT_FILE_RATE", help="Speed limit of each transfer, bytes per second (10M = 10 MiB/s; 0: none); a small file too takes at least its size / this rate."),
    redis: Optional[str] = typer.Option(
        None, "--redis", envvar="RICHCHAT_REDIS", metavar="URL",
        help="Be one node of a chat kept in this Redis (redis://[:PASSWORD@]HOST:PORT/DB, rediss:// for TLS): several servers, one chat. See README 'Several servers'.",
    ),
    cluster: Optional[str] = typer.Option(
        None, "--cluster", envvar="RICHCHAT_CLUSTER",
        help="With --redis: the chat's name in that Redis; nodes with the same name serve one chat (default: --name).",
    ),
    log_level: LogLevel = typer.Option(LogLevel.info, envvar="RICHCHAT_LOG_LEVEL", case_sensitive=False, help="How much the server logs on stderr."),
) -> None:
    """Run the chat server: chat, history on disk, LAN discovery; Ctrl+C stops it cleanly.

    Exit codes: 0 stopped (Ctrl+C, SIGTERM, SIGHUP), 2 usage, 4 unknown host (--host),
    10 address in use, 12 data directory in use by another server, 13 data
    directory unusable, 18 bad TLS certificate or key file, 23 Redis cannot
    be reached (--redis), 130 interrupted at the port prompt or during start-up.
    """
    from pydantic import ValidationError

    from richchat.core.errors import UsageError
    from richchat.core.logging import setup_logging
    from richchat.core.protocol.filenames import parse_size, size_above_zero
    from richchat.core.server import ServerConfig
    from richchat.core.server.run import run_server

    if name is not None and len(name) > MAX_NAME:
        raise UsageError(f"--name {name[:20]!r}... is too long: {len(name)} characters, at most {MAX_NAME}")
    if tls is False and (tls_cert is not None or tls_key is not None):
        given = " and ".join(o for o, v in (("--tls-cert", tls_cert), ("--tls-key", tls_key)) if v is not None)
        raise UsageError(f"--no-tls (or RICHCHAT_TLS=0) contradicts {given}: drop one (a certificate means TLS)")
    if show_fingerprint:
        from richchat.core.server.config import default_data_dir
        from richchat.core.server.tls import load_server_tls

        found = load_server_tls(data_dir or default_data_dir(), tls_cert, tls_key)
        if found.origin != "loaded":
            sys.stderr.write(f"{'new key and certificate' if found.origin == 'generated' else 'new certificate for the key'} in {found.cert_path.parent}\n")
        print(found.fingerprint, flush=True)
        return
    if port is None:
        port = _ask_port() if sys.stdin.isatty() else DEFAULT_PORT
    sizes = {}
    for option, text in (("--file-max-size", file_max_size), ("--file-quota", file_quota), ("--file-rate", file_rate),
                         ("--output-limit", output_limit)):
        try:
            sizes[option] = parse_size(text)
        except ValueError as exc:
            raise UsageError(f"bad {option} {text!r}: {exc}") from None
    for option in ("--file-max-size", "--file-quota"):
        if sizes[option] == 0:
            text = file_max_size if option == "--file-max-size" else file_quota
            raise UsageError(f"bad {option} {text!r}: at least 1 byte (to turn file sharing off, use --no-files)")
    if sizes["--file-rate"] == 0 and size_above_zero(file_rate):  # 0.5 is not 0 (no limit)
        raise UsageError(f"bad --file-rate {file_rate!r}: at least 1 byte per second (0: no limit)")
    setup_logging(log_level.value)
    options = dict(
        host=host, port=port, name=name or socket.gethostname()[:MAX_NAME], history=history, retention=retention,
        beacon=beacon, beacon_addrs=tuple(beacon_addr) if beacon_addr else None, beacon_port=beacon_port,
        beacon_interval=beacon_interval, mdns=mdns, max_clients=max_clients, flood_rate=flood_rate,
        flood_burst=flood_burst, idle_timeout=idle_timeout, output_limit=sizes["--output-limit"], tls=bool(tls), tls_cert=tls_cert, tls_key=tls_key,
        tls_handshake_timeout=tls_handshake_timeout, files=files,
        file_max_size=sizes["--file-max-size"], file_quota=sizes["--file-quota"],
        file_retention=file_retention * 86400, file_rate=sizes["--file-rate"],
    )
    if data_dir is not None:
        options["data_dir"] = data_dir
    if cluster is not None and redis is None:
        raise UsageError("--cluster needs --redis (a cluster's nodes share one Redis)")
    if redis is not None:
        if not redis.startswith(("redis://", "rediss://", "unix://")):
            raise UsageError(f"--redis {redis.split('@')[-1]!r}: not a redis://, rediss:// or unix:// URL")
        _check_redis_url(redis)
        options["redis"] = redis
        options["redis_password"] = os.environ.get("RICHCHAT_REDIS_PASSWORD") or None
        options["cluster"] = cluster
    try:
        config = ServerConfig.model_validate(options)
    except ValidationError as exc:  # a limit not checked above: one line, never a dump
        err = exc.errors()[0]
        field = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "an option"
        typed = {"--output-limit": output_limit, "--file-max-size": file_max_size,
                 "--file-quota": file_quota, "--file-rate": file_rate}.get(field)
        if typed is not None:  # a size: the text typed, then what it came to
            raise UsageError(f"bad {field} {typed!r} ({err.get('input')} bytes): "
                             f"{err['msg']}") from None
        raise UsageError(f"bad {field} {err.get('input')!r}: {err['msg']}") from None

    def ready(srv: ChatServer) -> None:
        # HOST:PORT as join and send take it: an IPv6 address in brackets ([::1]:5050)
        host = f"[{srv.host}]" if ":" in srv.host else srv.host
        security = f", TLS, key {srv.tls.fingerprint}" if srv.tls is not None else ""
        node = f"; node of cluster {config.cluster_name!r}" if config.cluster_name else ""
        line = f"richchat server {config.name!r} listening on {host}:{srv.port} (protocol 1{security}){node}"
        try:
            print(line, flush=True)
        except OSError as exc:  # stdout closed (`richchat server | true`): serve all the same
            import logging

            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of the run
            logging.getLogger("richchat.server").warning(
                "cannot write to stdout (%s); serving all the same", exc.strerror or exc)

    run_server(config, ready)


def _check_redis_url(url: str) -> None:
    """A port or database redis-py would not use as written is a usage error: it takes
    ``:0`` for 6379 and a database that is no number for 0 (perhaps another chat's)."""
    from urllib.parse import unquote, urlsplit

    from richchat.core.errors import UsageError
    from richchat.core.protocol.text import is_digits

    if url.startswith("unix://"):
        return
    shown = url.split("://", 1)[0] + "://" + url.split("@")[-1].split("://")[-1]
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        text = parts.netloc.rpartition(":")[2]
        raise UsageError(f"--redis {shown!r}: bad port {text!r} (1-65535)")
    db = unquote(parts.path).strip("/")
    if db and not is_digits(db, 9):
        raise UsageError(f"--redis {shown!r}: bad database {db!r} (a number: redis://HOST:PORT/0)")
    if parts.query:
        _check_redis_query(url, shown)


def _check_redis_query(url: str, shown: str) -> None:
    """Options in the URL's query (``?socket_timeout=5``) go to redis-py's connection as
    they are: an unknown one or a bad value is a usage error naming it, not "cannot use Redis
    ... start Redis" with redis-py's own words. Nothing is connected to here."""
    import re

    from redis.asyncio import ConnectionPool

    from richchat.core.errors import UsageError

    try:
        pool = ConnectionPool.from_url(url)
        pool.connection_class(**pool.connection_kwargs)
    except TypeError as exc:
        m = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        what = f"unknown option {m.group(1)!r}" if m else str(exc)
        raise UsageError(f"--redis {shown!r}: {what} in the URL's query",
                         hint="options are redis-py's connection options, "
                              "e.g. ?socket_timeout=5") from None
    except ValueError as exc:
        raise UsageError(f"--redis {shown!r}: {exc}".rstrip(".")) from None
