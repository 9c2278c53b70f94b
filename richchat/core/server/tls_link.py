"""TLS between the TCP transport and a connection: :class:`TlsLink`.

The server does not hand ``ssl=`` to ``create_server``. asyncio's TLS layer (``sslproto``) is
pure Python on every write: about ten calls between ``transport.write()`` and the socket, which
made a delivery over TLS cost twice one over plain TCP (measured: docs/performance.md, TLS). A
``TlsLink`` is the protocol of the plain TCP transport and the transport of the connection
above it, with an ``ssl.SSLObject`` between two memory BIOs doing all of the cryptography:

* **write**: ``SSLObject.write`` (encrypt, into a BIO), ``BIO.read``, then ``os.write`` on the
  socket while the TCP transport has nothing buffered (as ``Connection`` does for plain TCP),
  else ``transport.write`` (the TCP transport's flow-control callbacks, with its high-water
  mark at 0, say which: the same ordering guarantee). Three C calls per write, made from one
  Python frame: :meth:`TlsLink.send`, which ``Connection.flush_out`` calls directly (no
  ``transport.write`` and ``get_write_buffer_size`` frames per recipient), and which calls the
  C ``write`` of the SSL object (``SSLObject.write`` is a Python wrapper around it).
* **read**: ciphertext into the incoming BIO, ``SSLObject.read`` until it wants more, the
  plaintext to the connection in one ``data_received``. Whatever the read produces to send
  (a TLS 1.3 KeyUpdate answer) goes out at once.
* **plaintext**: a first byte that does not start a TLS handshake record (``0x16``: a
  netcat user's first line, a plaintext client's ``HELLO``) gets one readable line,
  :func:`~richchat.core.protocol.codec.tls_port_notice` (use ``richchat join --tls`` or
  ``ncat --ssl``), and the connection is closed: the same end as a failed handshake, and
  counted as one, instead of a silent close the user cannot explain. A silent connection
  still hears nothing and is closed at the handshake bound.
* **handshake**: driven by the same reads; bounded by ``timeout`` seconds from the accept (the
  link aborts the TCP connection then); the connection above sees ``connection_made`` only
  once it is done. :attr:`TlsLink.on_handshake_done` tells the server's accounting
  (:class:`~richchat.core.server.tls.HandshakeGate`) that it ended, whatever the outcome.
* **end of input**: the peer's close_notify (or a TCP EOF) is ``eof_received`` above; like
  plain TCP, a connection may still answer the lines it read before it closes (TLS 1.3 allows
  it; a TLS 1.2 peer simply stops reading).
* **close**: close_notify, then the TCP transport's close (which flushes what is buffered).

No renegotiation (``OP_NO_RENEGOTIATION`` on the context); session tickets off. The link never
parses TLS itself: OpenSSL does, through ``SSLObject``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Callable
from typing import Any, cast

log = logging.getLogger("richchat.server")

#: plaintext read from the SSL object at a time (a TLS record holds at most 16 KiB)
READ_CHUNK = 65536
_DIRECT = os.name == "posix"
_PLAIN_TCP: type = getattr(asyncio.selector_events, "_SelectorSocketTransport", type(None))


class TlsLink(asyncio.Protocol, asyncio.Transport):
    """TLS for one accepted TCP connection (see the module text)."""

    __slots__ = (
        "_app", "_app_paused", "_closing", "_direct_fd", "_encrypt", "_eof", "_fd",
        "_handshake_ended", "_high", "_incoming", "_low", "_outgoing", "_ssl", "_started",
        "_take", "_tcp", "_timeout", "_timer", "established", "on_handshake_done",
    )

    def __init__(self, context: ssl.SSLContext, app: asyncio.Protocol, *, timeout: float,
                 on_handshake_done: Callable[[asyncio.BaseProtocol, bool], None] | None = None
                 ) -> None:
        asyncio.Transport.__init__(self)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        # the C object's write (SSLObject.write only calls it) and the BIO's read, bound once:
        # the hot path's two crypto calls without a Python frame or attribute walk each
        sslobj = getattr(self._ssl, "_sslobj", self._ssl)  # a private name: else the wrapper
        self._encrypt: Callable[[bytes | bytearray | memoryview], int] = sslobj.write
        self._take = self._outgoing.read
        self._app = app
        self._timeout = timeout
        self.on_handshake_done = on_handshake_done
        self._tcp: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._fd = -1  # the socket's fd while nothing waits in the TCP transport, else -1
        self._direct_fd = -1
        self.established = False
        self._started = False  # a first byte came
        self._handshake_ended = False
        self._closing = False
        self._eof = False  # the peer's input ended (close_notify or TCP EOF)
        self._app_paused = False
        self._high = 64 * 1024
        self._low = 16 * 1024

    # ------------------------------------------------------------------ TCP side (Protocol)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tcp = tcp = cast(asyncio.Transport, transport)
        sock = tcp.get_extra_info("socket")
        if _DIRECT and sock is not None and isinstance(tcp, _PLAIN_TCP):
            tcp.set_write_buffer_limits(high=0, low=0)
            self._fd = self._direct_fd = sock.fileno()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._timeout, self._handshake_timeout)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if not self._started:
            self._started = True
            if data[:1] != b"\x16":  # no TLS record: a person typing, a plaintext client
                self._plaintext()
                return
        self._incoming.write(data)
        if not self.established and not self._handshake():
            return
        self._read()

    def eof_received(self) -> bool | None:
        if self._closing and not self.established:
            return True  # closing already (the plaintext notice is on its way): let it go out
        self._incoming.write_eof()
        if not self.established:
            self._fail("closed during the TLS handshake")
            return None
        self._read()
        return True  # half-closed: what the connection still writes goes out (its close ends it)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fd = -1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.established:
            self._end_handshake(False)
            return
        self._app.connection_lost(exc)

    def pause_writing(self) -> None:
        self._fd = -1  # the TCP transport buffers: later bytes queue behind

    def resume_writing(self) -> None:
        if not self._closing and self._tcp is not None and not self._tcp.is_closing():
            self._fd = self._direct_fd
        self._app_flow()

    # ------------------------------------------------------------------ TLS

    def _handshake(self) -> bool:
        """Advance the handshake; True once it is done (and the connection above made)."""
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        except (ssl.SSLError, OSError) as exc:
            self._flush()  # the alert, if OpenSSL made one
            self._fail(f"TLS handshake failed: {getattr(exc, 'reason', None) or exc}")
            return False
        self._flush()
        self.established = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._end_handshake(True)
        self._app.connection_made(self)
        return not self._closing

    def _handshake_timeout(self) -> None:
        self._timer = None
        if not self.established:
            self._fail("TLS handshake not finished in time")

    def _plaintext(self) -> None:
        """A plaintext first byte: say in plain words that this port speaks TLS, and close
        (after the line is sent; the handshake ends, failed, when the connection does)."""
        from richchat.core.protocol.codec import tls_port_notice

        peer = self.get_extra_info("peername")
        sock = self.get_extra_info("sockname")
        log.info("plaintext from %s on the TLS port: told to use TLS, closed",
                 peer[0] if isinstance(peer, tuple) else peer)
        self._closing = True
        if self._tcp is None:
            return
        host, port = (sock[0], sock[1]) if isinstance(sock, tuple) else ("HOST", 0)
        self._fd = -1
        self._tcp.write(tls_port_notice(str(host).split("%")[0], int(port)))
        self._tcp.close()

    def _fail(self, why: str) -> None:
        log.debug("%s: %s", self._peer(), why)
        self._closing = True
        if self._tcp is not None:
            self._tcp.abort()

    def _end_handshake(self, ok: bool) -> None:
        if not self._handshake_ended:
            self._handshake_ended = True
            if self.on_handshake_done is not None:
                self.on_handshake_done(self, ok)

    def _read(self) -> None:
        chunks: list[bytes] = []
        ended = False
        try:
            while True:
                chunk = self._ssl.read(READ_CHUNK)
                if not chunk:
                    ended = True  # close_notify
                    break
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            ended = True  # close_notify, or the TCP stream ended without one
        except ssl.SSLError as exc:
            log.debug("%s: TLS error: %s", self._peer(), exc)
            if chunks:
                self._app.data_received(b"".join(chunks))
            self.abort()
            return
        self._flush()  # what reading produced (a KeyUpdate answer)
        if chunks and not self._closing:
            self._app.data_received(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if ended and not self._eof:
            self._eof = True
            if not self._closing:
                keep = self._app.eof_received()
                if not keep:
                    self.close()

    def _flush(self) -> None:
        """Send what the SSL object wrote to the outgoing BIO."""
        if not self._outgoing.pending:
            return
        data = self._outgoing.read()
        fd = self._fd
        if fd >= 0:
            try:
                n = os.write(fd, data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                n = 0  # reset, broken pipe: the transport's own write meets it and closes
            if n == len(data):
                return
            data = data[n:]
        if self._tcp is not None:
            self._tcp.write(data)

    # ------------------------------------------------------------------ app side (Transport)

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Encrypt ``data`` into one TLS record and send it: the fan-out's hot path, one call
        per recipient and flush (from ``Connection.flush_out``). Returns how many bytes now
        wait in the TCP transport (0: all went to the socket), for the caller's output limit.
        What :meth:`_flush` does, inline."""
        if self._closing or not self.established or not data:
            return 0
        try:
            self._encrypt(data)
        except ssl.SSLError as exc:
            log.debug("%s: TLS write failed: %s", self._peer(), exc)
            self.abort()
            return 0
        out = self._take()
        fd = self._fd
        if fd >= 0:
            try:
                n = os.write(fd, out)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                n = 0  # reset, broken pipe: the transport's own write meets it and closes
            if n == len(out):
                return 0
            out = out[n:]
        tcp = self._tcp
        if tcp is None:
            return 0
        tcp.write(out)
        self._app_flow()
        return tcp.get_write_buffer_size()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.send(data)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("TLS connections have no half-close from the server side")

    def get_write_buffer_size(self) -> int:
        return self._tcp.get_write_buffer_size() if self._tcp is not None else 0

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = 64 * 1024 if high is None else high
        self._low = self._high // 4 if low is None else low

    def _app_flow(self) -> None:
        size = self.get_write_buffer_size()
        if not self._app_paused and size > self._high:
            self._app_paused = True
            self._app.pause_writing()
        elif self._app_paused and size <= self._low:
            self._app_paused = False
            self._app.resume_writing()

    def pause_reading(self) -> None:
        if self._tcp is not None:
            self._tcp.pause_reading()

    def resume_reading(self) -> None:
        if self._tcp is not None:
            self._tcp.resume_reading()

    def is_reading(self) -> bool:
        return self._tcp is not None and self._tcp.is_reading()

    def is_closing(self) -> bool:
        return self._closing or self._tcp is None or self._tcp.is_closing()

    def close(self) -> None:
        """close_notify, then close the TCP transport (it sends what it buffered first)."""
        if self._closing:
            return
        self._closing = True
        if self.established:
            # SSLWantReadError: the peer's close_notify is not awaited
            with contextlib.suppress(ssl.SSLError, OSError):
                self._ssl.unwrap()
            self._flush()
        self._fd = -1
        if self._tcp is not None:
            self._tcp.close()

    def abort(self) -> None:
        self._closing = True
        self._fd = -1
        if self._tcp is not None:
            self._tcp.abort()

    def _peer(self) -> str:
        """``HOST:PORT`` (``[HOST]:PORT`` for IPv6) of the client, as the rest of the log says."""
        peer = self.get_extra_info("peername")
        if not isinstance(peer, tuple):
            return str(peer)
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._ssl
        if name == "sslcontext":
            return self._ssl.context
        if name == "cipher":
            return self._ssl.cipher()
        if name == "peercert":
            return self._ssl.getpeercert()
        if self._tcp is None:
            return default
        return self._tcp.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._app = cast(asyncio.Protocol, protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._app
