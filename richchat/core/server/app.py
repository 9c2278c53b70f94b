"""ChatServer: binds the listener, owns the hub and the history store, advertises itself,
sweeps idle connections, and shuts down gracefully.

Graceful shutdown: stop accepting, send every client ``SRV|Server is shutting down``, flush,
close each connection, wait up to ``shutdown_timeout`` seconds for them to go, abort the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from richchat import __version__
from richchat.core.constants import PROTOCOL_VERSION
from richchat.core.errors import (
    AddressInUseError,
    DataDirError,
    RichchatError,
    UnknownHostError,
)
from richchat.core.protocol import frames as f
from richchat.core.protocol.codec import encode, warm_up
from richchat.core.server import events as ev
from richchat.core.server.accept import Acceptor
from richchat.core.server.backends.embedded import EmbeddedBackend
from richchat.core.server.config import ServerConfig
from richchat.core.server.connection import Connection
from richchat.core.server.datadir import DataDirLock, prepare_data_dir
from richchat.core.server.delivery import Delivery
from richchat.core.server.dialect import Dialect
from richchat.core.server.hub import Hub
from richchat.core.server.memory import HeapTrimmer, collect_and_freeze, libc_malloc_trim
from richchat.core.server.storage import HistoryStore
from richchat.core.server.transfer import Transfers

if TYPE_CHECKING:
    from richchat.core.server.tls import HandshakeGate, ServerTls

if TYPE_CHECKING:
    from richchat.core.protocol.beacon import Cluster
    from richchat.core.server.backends.redis import RedisBackend

log = logging.getLogger("richchat.server")

FEATURES = ("rooms", "priv", "incremental")
#: seconds between two expiries of shared files (retention)
FILE_SWEEP_EVERY = 60.0
SERVER_AGENT = f"richchat-server/{__version__}"


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    try:
        import resource
    except ImportError:  # Windows
        return 512
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return int(soft)


class ChatServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.hub: Hub | None = None
        self.backend: EmbeddedBackend | RedisBackend | None = None
        #: file sharing: tokens, transfer connections, the file store (None: --no-files)
        self.files: Transfers | None = None
        self._server: asyncio.AbstractServer | None = None
        self._acceptors: list[Acceptor] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._trimmer: asyncio.Task[None] | None = None
        self.trimmer: HeapTrimmer | None = None
        self._advertiser: object | None = None
        self.port = config.port
        self.host = config.host
        self.server_id = ""
        self._lock: DataDirLock | None = None
        #: the TLS set-up (context, key fingerprint) when the chat port speaks TLS
        self.tls: ServerTls | None = None
        #: handshakes under way and their accounting (TLS only)
        self.handshakes: HandshakeGate | None = None

    async def start(self) -> None:
        cfg = self.config
        # one server per data directory, checked before anything else is opened
        prepare_data_dir(cfg.data_dir)
        self._lock = DataDirLock(cfg.data_dir)
        self._lock.acquire()
        try:
            await self._start()
        except BaseException:
            for acceptor in self._acceptors:
                acceptor.close()
            self._acceptors = []
            if self._server is not None:
                self._server.close()
                self._server = None
            if self.backend is not None:
                await self.backend.close()
                self.backend = None
            await self._close_files()
            self._release_lock()
            raise

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def _start(self) -> None:
        cfg = self.config
        limit = raise_nofile_limit()
        if cfg.max_clients > limit - 64:
            log.warning(
                "file descriptor limit %d caps clients below --max-clients %d",
                limit,
                cfg.max_clients,
            )
        # validators and decoding paths now, not while the first clients connect
        warm_up()
        backend = self.backend = await self._open_backend()
        self.server_id = backend.server_id
        if cfg.files and cfg.redis is not None:
            # A file lives in one node's data directory and its offer would reach only that
            # node's clients: a cluster does not share files (yet); its HELLO says no files=.
            log.warning("file sharing is off on a node of a cluster (--redis): files are kept "
                        "per node; run a single server for file sharing")
        elif cfg.files:
            self.files = self._open_files()
        delivery = Delivery(cfg, backend, self._hello)
        self.hub = hub = Hub(cfg, backend, delivery, self.files)
        loop = asyncio.get_running_loop()
        factory: Callable[[], asyncio.BaseProtocol] = lambda: Connection(hub)  # noqa: E731
        if cfg.uses_tls:
            from richchat.core.server.tls import HandshakeGate, load_server_tls

            self.tls = load_server_tls(cfg.data_dir, cfg.tls_cert, cfg.tls_key)
            self.handshakes = HandshakeGate(cfg.max_clients, lambda: len(hub.conns))
            factory = self.handshakes.factory(
                self.tls.context, lambda: Connection(hub), cfg.tls_handshake_timeout
            )
            log.info("TLS key %s (%s: %s)", self.tls.fingerprint, {
                "generated": "new key and certificate", "reissued": "new certificate for the key",
            }.get(self.tls.origin, "certificate"), self.tls.cert_path)
        try:
            # bound and listening, but accepted by our Acceptor, not asyncio (accept.py)
            self._server = await loop.create_server(
                factory, cfg.host, cfg.port, reuse_address=True, backlog=1024,
                start_serving=False,
            )
        except OSError as exc:
            if isinstance(exc, socket.gaierror):
                raise UnknownHostError(
                    f"unknown host {cfg.host!r} for --host: {exc.strerror or exc}",
                    hint="give an address of this machine, 0.0.0.0 or ::",
                ) from None
            if exc.errno == errno.EADDRINUSE:
                raise AddressInUseError(
                    f"{cfg.host}:{cfg.port} is already in use",
                    hint="choose another --port, or --port 0 for a free one",
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:  # another machine's address: a --host mistake
                raise UnknownHostError(
                    f"{cfg.host} is not an address of this machine" if _is_ip(cfg.host)
                    else f"{cfg.host} names an address that is not this machine's",
                    hint="give an address of this machine, 0.0.0.0 or ::",
                ) from None
            raise RichchatError(
                f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}"
            ) from None
        refusal = None if cfg.uses_tls else encode(f.Error(
            code="server_full", text="the server is out of file descriptors, try later"))
        for listening in self._server.sockets:
            own = socket.socket(fileno=os.dup(listening.fileno()))
            own.listen(1024)  # asyncio listens only when it serves
            self._acceptors.append(Acceptor(own, factory, refusal))
        sock = self._server.sockets[0]
        self.host, self.port = sock.getsockname()[:2]
        self._sweeper = asyncio.create_task(self._sweep())
        if cfg.heap_trim_quiet > 0:
            collect_and_freeze()  # start-up objects (modules, validators) live for good
            self.trimmer = HeapTrimmer(
                lambda: delivery.flushes,
                libc_malloc_trim(),
                cfg.heap_trim_quiet,
                population=lambda: len(hub.conns),
            )
            self._trimmer = asyncio.create_task(self.trimmer.run())
        await self._start_advertiser()
        log.info("listening on %s:%d%s", self.host, self.port, " (TLS)" if self.tls else "")

    def _open_files(self) -> Transfers:
        from richchat.core.server.files import FileStore

        cfg = self.config
        where = cfg.data_dir / "files"
        try:
            store = FileStore(where, quota=cfg.file_quota, retention=cfg.file_retention)
        except (OSError, sqlite3.Error) as exc:
            raise DataDirError(f"cannot use the shared-files directory {where}: {exc}") from None
        store.sweep()
        return Transfers(cfg, store)

    async def _close_files(self) -> None:
        files, self.files = self.files, None
        if files is not None:
            await files.close()
            files.store.close()

    async def _open_backend(self) -> EmbeddedBackend | RedisBackend:
        cfg = self.config
        if cfg.redis is not None:  # a node of a cluster: redis-py is imported only here
            from richchat.core.server.backends.redis import RedisBackend, RedisConfig

            cluster = cfg.cluster_name
            assert cluster is not None
            node = RedisBackend(
                RedisConfig(cfg.redis, cluster, cfg.history, cfg.retention, cfg.redis_password)
            )
            node.on_evicted = self._evicted
            await node.open()  # RedisUnavailableError: one line and its exit status
            log.info("node %s of cluster %r", node.node, cluster)
            return node
        history = cfg.data_dir / "history.sqlite3"
        try:
            backend = EmbeddedBackend(HistoryStore(history, retention=cfg.retention))
            await backend.open()
        except sqlite3.Error as exc:
            # never overwritten: what it holds may still be saved (docs/protocol.md "Faults")
            hint = ("move it aside or restore a backup; the server then starts a new history"
                    if isinstance(exc, sqlite3.DatabaseError)
                    and not isinstance(exc, sqlite3.OperationalError) else None)
            raise DataDirError(f"cannot use the history file {history}: {exc}",
                               hint=hint) from None
        return backend

    def _evicted(self, reason: str) -> None:
        """The cluster forgot this node (cut off from Redis too long): everyone reconnects."""
        hub = self.hub
        if hub is None:
            return
        hub.delivery.post(ev.Notice(reason))
        for conn in list(hub.conns):
            conn.close(reason)

    def _cluster_info(self) -> Cluster | None:
        """What discovery says of the chat a node serves (None: a server on its own)."""
        from richchat.core.protocol.beacon import Cluster

        backend, name = self.backend, self.config.cluster_name
        if name is None or backend is None or isinstance(backend, EmbeddedBackend):
            return None
        return Cluster(id=backend.cluster_id, name=name)

    async def _start_advertiser(self) -> None:
        cfg = self.config
        if not (cfg.beacon or cfg.mdns):
            return
        from richchat.core.discovery.advertise import Advertiser, ServerInfo

        def info() -> ServerInfo:
            return ServerInfo(
                server_id=self.server_id,
                name=cfg.name,
                port=self.port,
                users=self.hub.users_online if self.hub else 0,
                tls=self.tls is not None,
                fingerprint=self.tls.fingerprint if self.tls is not None else None,
                version=PROTOCOL_VERSION,
                cluster=self._cluster_info(),
            )

        adv = Advertiser(
            info,
            bind_host=cfg.host,
            beacon=cfg.beacon,
            beacon_port=cfg.beacon_port,
            beacon_addrs=list(cfg.beacon_addrs) if cfg.beacon_addrs else None,
            interval=cfg.beacon_interval,
            mdns=cfg.mdns,
        )
        try:
            await adv.start()
        except OSError as exc:
            log.warning("discovery advertising disabled: %s", exc)
            return
        self._advertiser = adv

    async def _sweep(self) -> None:
        """Ping silent HELLO clients, drop idle ones and those that never register.

        A connection of any dialect (netcat users at the nickname prompt, a silent port
        scanner) that has registered no nickname ``register_timeout`` seconds after it
        connected is closed; nobody is told, as nobody was told it came.
        """
        cfg = self.config
        period = max(0.05, min(5.0, cfg.idle_timeout / 4, cfg.register_timeout / 4))
        files_swept = time.monotonic()
        while True:
            await asyncio.sleep(period)
            if self.hub is None:
                continue
            now = time.monotonic()
            if self.files is not None and now - files_swept >= FILE_SWEEP_EVERY:
                files_swept = now
                try:
                    self.files.store.sweep()
                except Exception:  # a damaged index: chat goes on; said in the log
                    log.exception("could not expire shared files")
            hub = self.hub
            for conn in list(hub.conns):
                if conn.closed or not isinstance(conn, Connection):
                    continue
                if conn.name is None:
                    if now - conn.connected_at > cfg.register_timeout:
                        if conn.dialect != Dialect.PENDING:
                            hub.fail(
                                conn,
                                "register_timeout",
                                f"no nickname chosen within {cfg.register_timeout:g} s",
                            )
                        conn.close("registration timeout")
                    continue
                if conn.dialect != Dialect.HELLO:
                    continue  # raw and seed clients rely on TCP keepalive
                silent = now - conn.last_seen
                if silent > cfg.idle_timeout:
                    conn.close("timed out")  # silent through a PING: idle timeout
                elif silent > cfg.idle_timeout / 2 and not conn.pinged:
                    conn.pinged = True
                    hub.ping(conn, str(int(now)))

    @property
    def store(self) -> HistoryStore | None:
        """The history file of the embedded backend (None before start and after stop, and
        for a node of a cluster)."""
        backend = self.backend
        return backend.store if isinstance(backend, EmbeddedBackend) else None

    def _hello(self) -> f.Hello:
        """The ``HELLO`` this server answers with."""
        return f.Hello(
            version=PROTOCOL_VERSION,
            agent=SERVER_AGENT,
            role="server",
            name=self.config.name,
            users=self.hub.users_online if self.hub else 0,
            tls=self.tls is not None,
            fingerprint=self.tls.fingerprint if self.tls is not None else None,
            features=FEATURES if self.files is None else (*FEATURES, "files"),
            flood_rate=self.config.flood_rate,
            flood_burst=self.config.flood_burst,
            file_max=self.files.max_size if self.files is not None else None,
            file_rate=(self.config.file_rate or None) if self.files is not None else None,
            cluster=self.config.cluster_name,
        )

    async def stop(self) -> None:
        """Graceful shutdown; safe to call twice."""
        if self._server is None:
            return
        server, self._server = self._server, None
        for acceptor in self._acceptors:
            acceptor.close()
        self._acceptors = []
        server.close()
        if self.handshakes is not None:
            self.handshakes.abort_all()
        for task in (self._sweeper, self._trimmer):
            if task is not None:
                task.cancel()
        if self._advertiser is not None:
            await self._advertiser.stop()  # type: ignore[attr-defined]
            self._advertiser = None
        hub = self.hub
        if hub is not None:
            hub.shutdown()
            for conn in list(hub.conns):
                conn.close("server shutting down")
            deadline = time.monotonic() + self.config.shutdown_timeout
            while hub.conns and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            for conn in list(hub.conns):
                if isinstance(conn, Connection):
                    conn.abort("server shutting down (client did not close in time)")
            await asyncio.sleep(0)
        await self._close_files()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), timeout=1.0)
        if self.backend is not None:
            await self.backend.close()
            self.backend = None
        self._release_lock()
        log.info("server stopped")

    async def __aenter__(self) -> ChatServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
