"""Service probes for open ports: is it a joinable richchat server, or what else is there?

Every probe is read-only and minimal. Connect; wait briefly for a banner (SSH, SMTP, FTP,
IRC, POP3, IMAP and others speak first). A service that stays silent gets one line, our
``HELLO|1|richchat-scan/<ver>``: a richchat server answers with a HELLO of its own that says
``role=server`` (a key no client sends, so an echo service, which returns our own HELLO, is
never joinable), its name, users online and TLS flag, and is marked joinable (we then say
``CMD_QUIT|scan`` and close); an HTTP server
usually answers 400, a TLS server a TLS alert, and only then is ``requests`` asked for
``GET /`` (status, ``Server`` header, page title), over HTTPS for a TLS port.

The waits adapt to the probe connection's handshake time (the round-trip time): a short
first wait for the answer to ``HELLO``, and a second, longer one on the same connection only
when something suggests a slow richchat server might still answer (see :class:`_Waits`).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import socket
import ssl
import struct
from typing import Any

from richchat import __version__
from richchat.core.constants import DEFAULT_PORT, welcome_server_name
from richchat.core.protocol import decode_server_line
from richchat.core.protocol.codec import TLS_PORT_NOTICE_PREFIX
from richchat.core.protocol.frames import Hello
from richchat.core.protocol.text import sanitize_text
from richchat.core.scanner.models import HttpInfo, PortResult, RichchatInfo, TlsInfo

# How long to wait for a banner: services that speak first do so as soon as they accept, a
# few round trips after the handshake. Between these bounds, BANNER_RTTS handshake times.
# (A banner that comes later still names the service: it is the first line we read after
# HELLO. The richchat server waits 0.4 s before it treats a silent client as a netcat
# user, so HELLO always goes well before that.)
BANNER_WAIT_MIN = 0.025
BANNER_WAIT_MAX = 0.15
BANNER_RTTS = 10
# How long to wait for the answer to HELLO, first: a richchat server answers at once
# (about 1 ms on a quiet LAN host, tens of ms on a host with four times more runnable
# processes than cores). Between these bounds, REPLY_RTTS handshake times.
REPLY_WAIT_MIN = 0.1
REPLY_RTTS = 25
# ... then, only for a port that may still be a slow richchat server, a second wait on the
# same connection: REPLY_RETRY_WAIT (or three first waits) more when the probe's own timers
# fired late (this machine is busy, and a server on it, or on a host as busy, may be as
# slow: it gets that long again once this process runs again); and up to REPLY_WAIT_MAX in
# all on richchat's default port.
REPLY_RETRY_WAIT = 0.5
REPLY_WAIT_MAX = 1.0
LATE_TIMER = 0.025  # a timer this late: this process did not get the CPU (a busy machine)
RICHCHAT_PORTS = frozenset({DEFAULT_PORT})  # richchat server's default port
HTTP_TIMEOUT = 2.0
MAX_READ = 4096
HELLO_LINE = f"HELLO|1|richchat-scan/{__version__}\n".encode()
QUIT_LINE = b"CMD_QUIT|scan\n"
WEB_PORTS = frozenset({80, 443, 8000, 8008, 8080, 8443, 8888})

def _welcome_name(line: str) -> str | None:
    """The server name in a richchat netcat welcome (``*** Welcome to NAME (richchat ...``)."""
    return welcome_server_name(line) if line.startswith("*** ") else None
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_FTP_HINT = re.compile(r"ftp", re.IGNORECASE)
_SMTP_HINT = re.compile(r"smtp|esmtp|mail|postfix|exim|sendmail", re.IGNORECASE)


class NotOpen(Exception):
    """The port refused the probe connection: the sweep's 'open' did not hold."""


def _clean(text: str, limit: int = 200) -> str:
    text = sanitize_text(text.strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_line(data: bytes) -> str:
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    return line.decode("utf-8", errors="replace")


def classify_banner(banner: str) -> str | None:
    """Name the service behind a greeting line, or None."""
    if banner.startswith("SSH-"):
        return "ssh"
    if banner.startswith("220"):
        if _FTP_HINT.search(banner):
            return "ftp"
        if _SMTP_HINT.search(banner):
            return "smtp"
        return "smtp/ftp"
    if banner.startswith("+OK"):
        return "pop3"
    if banner.startswith("* OK"):
        return "imap"
    if banner.startswith(":") and (" NOTICE " in banner or " 0" in banner or " 4" in banner):
        return "irc"
    if banner.startswith("NOTICE ") or banner.startswith("ERROR :"):
        return "irc"
    if banner.startswith("HTTP/"):
        return "http"
    if banner.startswith("RFB "):
        return "vnc"
    if banner.startswith("ERR|server_full|"):
        return "richchat (full)"  # a richchat server at its --max-clients refuses at once
    if banner.startswith("-ERR") or banner.startswith("+PONG"):
        return "redis"
    return None


def _richchat_from_hello(frame: Hello, fingerprint: str | None = None) -> RichchatInfo:
    """``fingerprint``: the key the TLS handshake presented (what the HELLO's ``fp`` says is
    only what the server claims)."""
    return RichchatInfo(
        server_name=_clean(frame.name) if frame.name is not None else None,
        agent=frame.agent,
        protocol=frame.version,
        users=frame.users,
        tls=fingerprint is not None or bool(frame.tls),
        fingerprint=fingerprint or frame.fingerprint,
        features=frame.features,
    )


def _tls_context() -> ssl.SSLContext:
    """A client that checks no certificate: the scan reports what it is shown."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _certificate_subject(der: bytes) -> str | None:
    try:
        from cryptography import x509

        return _clean(x509.load_der_x509_certificate(der).subject.rfc4514_string()) or None
    except Exception:  # not parseable, or cryptography missing: the rest still says a lot
        return None


async def _tls_probe(address: str, port: int, waits: _Waits) -> tuple[TlsInfo, Hello | None] | None:
    """A TLS handshake (no certificate checked), then our HELLO inside it: the TLS details
    and a richchat server's answer, or None if the port does not speak TLS."""
    from richchat.core.trust.fingerprint import fingerprint_of_certificate

    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address, port, ssl=_tls_context(), server_hostname="",
                                    ssl_handshake_timeout=HTTP_TIMEOUT, limit=MAX_READ * 4),
            HTTP_TIMEOUT)
    except (OSError, asyncio.TimeoutError, ValueError):
        return None
    try:
        sslobj = writer.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        fingerprint = None
        if der:
            with contextlib.suppress(ValueError):
                fingerprint = fingerprint_of_certificate(der)
        cipher = sslobj.cipher() if sslobj is not None else None
        tls = TlsInfo(version=sslobj.version() if sslobj is not None else "TLS",
                      cipher=cipher[0] if cipher else None,
                      subject=_certificate_subject(der) if der else None,
                      fingerprint=fingerprint)
        try:
            writer.write(HELLO_LINE)
            await asyncio.wait_for(writer.drain(), waits.retry)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            return tls, None
        first, _ = await _read_first_line(reader, max(waits.reply, waits.retry), waits)
        frame = decode_server_line(_first_line(first)) if first else None
        if isinstance(frame, Hello) and frame.from_server:
            await _close(writer, QUIT_LINE)
            return tls, frame
        return tls, None
    finally:
        if not writer.is_closing():
            await _close(writer)


class _Waits:
    """The waits of one probe, from its handshake time, and how late its timers fired.

    A timer that fires late means this process did not get the CPU when it asked for it: the
    machine stalls (CPU load alone delays a timer by a few ms: wakers are favoured), and a
    richchat server on it (or on a host as stalled) may be as slow to answer. Tests run
    server and scanner on one machine, where that is exactly the case that matters. (A
    stall of this process alone costs nothing: what arrived meanwhile is read before the
    late timer is handled; it only makes silent ports wait longer.)
    """

    def __init__(self, handshake: float) -> None:
        self.banner = min(BANNER_WAIT_MAX, max(BANNER_WAIT_MIN, BANNER_RTTS * handshake))
        self.reply = min(REPLY_WAIT_MAX, max(REPLY_WAIT_MIN, REPLY_RTTS * handshake))
        self.retry = min(REPLY_WAIT_MAX, max(REPLY_RETRY_WAIT, 3 * self.reply))
        self.lateness = 0.0

    def timed_out(self, deadline: float) -> None:
        late = asyncio.get_running_loop().time() - deadline
        self.lateness = max(self.lateness, late)

    def second_wait(self, port: int) -> float:
        """How much longer to wait for the answer to HELLO once the first wait is over."""
        wait = 0.0
        if self.lateness >= LATE_TIMER:
            wait = self.retry
        if port in RICHCHAT_PORTS:
            wait = max(wait, REPLY_WAIT_MAX - self.reply)
        return wait


async def _read_some(reader: asyncio.StreamReader, wait: float, waits: _Waits) -> bytes:
    deadline = asyncio.get_running_loop().time() + wait
    try:
        return await asyncio.wait_for(reader.read(MAX_READ), wait)
    except asyncio.TimeoutError:
        waits.timed_out(deadline)
        return b""
    except (ConnectionError, OSError):
        return b""


async def _read_first_line(
    reader: asyncio.StreamReader, wait: float, waits: _Waits | None = None, data: bytes = b""
) -> tuple[bytes, bool]:
    """Whatever the peer sends first, read on until a full first line (or the wait ends).

    Returns the bytes (``data`` plus what came) and whether the peer closed the connection.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    closed = False
    while b"\n" not in data and len(data) < MAX_READ:
        left = deadline - loop.time()
        if left <= 0:
            break
        try:
            chunk = await asyncio.wait_for(reader.read(MAX_READ - len(data)), left)
        except asyncio.TimeoutError:
            if waits is not None:
                waits.timed_out(deadline)
            break
        except (ConnectionError, OSError):
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
        if data[:1] in (b"\x15", b"\x16"):
            break  # TLS records have no lines
    return data, closed


async def _read_hello_answer(
    reader: asyncio.StreamReader, wait: float, pending: bytes = b""
) -> Hello | None:
    """Read lines until a HELLO answer (or anything that shows this is not richchat).

    ``pending``: bytes already read after the welcome line, looked at first.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    lines = pending.splitlines(keepends=True)
    if lines and not lines[-1].endswith(b"\n"):
        lines.pop()  # a partial line: its end is lost; the HELLO answer is a line of its own
    for _ in range(8):
        if lines:
            raw = lines.pop(0)
        else:
            left = deadline - loop.time()
            if left <= 0:
                return None
            try:
                raw = await asyncio.wait_for(reader.readline(), left)
            except (asyncio.TimeoutError, ConnectionError, OSError, ValueError):
                return None
            if not raw:
                return None
        frame = decode_server_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        if isinstance(frame, Hello):
            return frame if frame.from_server else None
        if not raw.startswith(b"***"):
            return None
    return None


async def _close(writer: asyncio.StreamWriter, goodbye: bytes | None = None) -> None:
    with contextlib.suppress(Exception):
        if goodbye:
            writer.write(goodbye)
            await asyncio.wait_for(writer.drain(), 0.5)
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 0.5)


def _http_get(address: str, family: int, port: int, scheme: str, timeout: float) -> HttpInfo:
    import warnings

    import requests
    import urllib3

    host = f"[{address}]" if family == socket.AF_INET6 else address
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        with requests.get(
            f"{scheme}://{host}:{port}/",
            timeout=timeout,
            verify=False,
            allow_redirects=False,
            stream=True,
            headers={"User-Agent": f"richchat-scan/{__version__}"},
        ) as resp:
            body = b""
            for chunk in resp.iter_content(8192):
                body += chunk
                if len(body) >= 65536 or _TITLE.search(body):
                    break
    match = _TITLE.search(body)
    title = None
    if match:
        text = match.group(1).decode(resp.encoding or "utf-8", errors="replace")
        title = _clean(" ".join(html.unescape(text).split())) or None
    server = resp.headers.get("Server")
    return HttpInfo(
        scheme="https" if scheme == "https" else "http",
        status=resp.status_code,
        reason=_clean(resp.reason) if resp.reason else None,
        server=_clean(server) if server else None,
        title=title,
    )


async def _http_probe(
    address: str, family: int, port: int, schemes: tuple[str, ...]
) -> HttpInfo | None:
    for scheme in schemes:
        try:
            return await asyncio.to_thread(_http_get, address, family, port, scheme, HTTP_TIMEOUT)
        except Exception:  # any failure means "not this scheme"
            continue
    return None


async def _named_by_banner(
    writer: asyncio.StreamWriter, family: int, address: str, port: int,
    base: dict[str, Any], banner: str,
) -> PortResult:
    service = classify_banner(banner)
    await _close(writer)
    if service == "http":
        info = await _http_probe(address, family, port, ("http",))
        return PortResult(**base, service="http", banner=_clean(banner), http=info)
    return PortResult(**base, service=service, banner=_clean(banner))


async def _richchat_after_welcome(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, base: dict[str, Any],
    banner: str, welcome: str, waits: _Waits, pending: bytes = b"",
) -> PortResult:
    """The richchat netcat welcome: joinable; its HELLO answer adds name, users and TLS."""
    hello = await _read_hello_answer(reader, waits.retry, pending)
    await _close(writer, QUIT_LINE)
    chat = (
        _richchat_from_hello(hello)
        if hello is not None
        else RichchatInfo(server_name=_clean(welcome), agent="richchat")
    )
    return PortResult(**base, service="richchat", joinable=True, banner=_clean(banner),
                      richchat=chat)


def _is_tls_alert(data: bytes) -> bool:
    """A TLS alert or record, or a TLS richchat port's plain-words answer to plaintext (it
    says it speaks TLS: the TLS probe follows all the same)."""
    return (len(data) >= 2 and data[0] in (0x15, 0x16) and data[1] == 0x03) or data.startswith(
        TLS_PORT_NOTICE_PREFIX)


async def probe_port(
    family: int, sockaddr: tuple[Any, ...], port: int, *, connect_timeout: float, rtt: float | None
) -> PortResult:
    """Identify what listens on an open port. Raises :class:`NotOpen` if it refuses us."""
    address = sockaddr[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (address, port, *sockaddr[1:])),
                               connect_timeout)
    except ConnectionRefusedError as exc:
        sock.close()
        raise NotOpen(str(exc)) from None
    except (asyncio.TimeoutError, OSError):  # a reset comes after the handshake: still open
        sock.close()
        return PortResult(port=port, rtt_ms=_ms(rtt))  # open in the sweep, silent now
    try:
        if sock.getsockname() == sock.getpeername():
            sock.close()
            raise NotOpen("self-connect")
    except OSError:  # reset right after the handshake: open, and nothing more to learn
        sock.close()
        return PortResult(port=port, rtt_ms=_ms(rtt))
    # How long to wait for answers scales with this connect's handshake time (a loaded or
    # distant host answers later).
    waits = _Waits(loop.time() - started)
    reader, writer = await asyncio.open_connection(sock=sock, limit=MAX_READ * 4)
    try:
        return await _identify(reader, writer, family, address, port, rtt, waits)
    finally:
        if not writer.is_closing():
            await _close(writer)


async def verify_open(
    family: int, sockaddr: tuple[Any, ...], port: int, *, connect_timeout: float
) -> None:
    """Connect once more and close at once (RST): raises :class:`NotOpen` if refused.

    Used instead of :func:`probe_port` when service probes are off, so that a port is never
    reported open on the strength of one connect alone (on loopback two in-flight sweep
    sockets can, in theory, simultaneously open onto each other).
    """
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(
            loop.sock_connect(sock, (sockaddr[0], port, *sockaddr[1:])), connect_timeout
        )
        if sock.getsockname() == sock.getpeername():
            raise NotOpen("self-connect")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except ConnectionRefusedError as exc:
        raise NotOpen(str(exc)) from None
    except (asyncio.TimeoutError, OSError):
        pass  # open in the sweep, slow now (or reset after the handshake): keep its answer
    finally:
        sock.close()


async def _identify(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    family: int,
    address: str,
    port: int,
    rtt: float | None,
    waits: _Waits,
) -> PortResult:
    base: dict[str, Any] = {"port": port, "rtt_ms": _ms(rtt)}
    banner_bytes = await _read_some(reader, waits.banner, waits)
    banner = _first_line(banner_bytes) if banner_bytes else ""
    welcome = _welcome_name(banner)
    if banner and welcome is None:
        return await _named_by_banner(writer, family, address, port, base, banner)
    # Silent (or a richchat raw welcome): say HELLO, the one line a richchat server answers.
    try:
        writer.write(HELLO_LINE)
        await asyncio.wait_for(writer.drain(), waits.retry)
    except asyncio.TimeoutError:
        await _close(writer)
        return PortResult(**base, banner=_clean(banner) or None)
    except (ConnectionError, OSError):
        pass  # the peer hung up (perhaps after a late banner): read what it sent
    if welcome is not None:
        return await _richchat_after_welcome(reader, writer, base, banner, welcome, waits)
    first, hung_up = await _read_first_line(reader, waits.reply, waits)
    if not first and not hung_up and waits.second_wait(port) > 0:
        first, hung_up = await _read_first_line(reader, waits.second_wait(port))
    elif first and b"\n" not in first and not hung_up and first[:1] not in (b"\x15", b"\x16"):
        # a line under way: give it as long again
        first, hung_up = await _read_first_line(reader, waits.retry, data=first)
    line = _first_line(first) if first else ""
    frame = decode_server_line(line) if line else None
    if isinstance(frame, Hello) and frame.from_server:
        # a server's answer (role=server), whatever its agent: it speaks our protocol
        await _close(writer, QUIT_LINE)
        return PortResult(**base, service="richchat", joinable=True,
                          richchat=_richchat_from_hello(frame))
    if first.startswith(HELLO_LINE.rstrip(b"\n")):
        await _close(writer)  # our own line came back: an echo service, not a chat server
        return PortResult(**base, service="echo", banner=_clean(line))
    late_welcome = _welcome_name(line)
    if late_welcome is not None:
        # a busy richchat server sent its netcat welcome before reading our HELLO
        return await _richchat_after_welcome(
            reader, writer, base, line, late_welcome, waits, first.partition(b"\n")[2]
        )
    if line and not _is_tls_alert(first) and classify_banner(line) not in (None, "http"):
        # a banner that came after our HELLO went out (a slow SSH, SMTP, ... server)
        return await _named_by_banner(writer, family, address, port, base, line)
    await _close(writer)
    if _is_tls_alert(first) or (not first and hung_up):
        # A TLS alert, or a hang-up without a word (what TLS servers do with plain text):
        # a TLS handshake, then our HELLO inside it, tells a TLS richchat server (never sent
        # an HTTP request: it would read it as a netcat user's lines); one HTTPS request
        # then tells an HTTPS server apart.
        found = await _tls_probe(address, port, waits)
        if found is not None:
            tls, hello = found
            if hello is not None:
                return PortResult(**base, service="richchat", joinable=True, tls=tls,
                                  richchat=_richchat_from_hello(hello, tls.fingerprint))
            info = await _http_probe(address, family, port, ("https",))
            if info is not None:
                return PortResult(**base, service="https", http=info, tls=tls)
            return PortResult(**base, service="tls", tls=tls)
        info = await _http_probe(address, family, port, ("https",))
        if info is not None:
            return PortResult(**base, service="https", http=info)
        if first:
            return PortResult(**base, service="tls")
    lowered = first[:1024].lower()
    if line.startswith("HTTP/") or b"<html" in lowered or b"<!doctype" in lowered:
        info = await _http_probe(address, family, port, ("http",))
        return PortResult(**base, service="http", http=info,
                          banner=None if info else _clean(line) or None)
    if not first and port in WEB_PORTS:
        # Silent after our one line: only on well-known web ports is a GET still polite.
        schemes = ("https", "http") if port in (443, 8443) else ("http", "https")
        info = await _http_probe(address, family, port, schemes)
        if info is not None:
            return PortResult(**base, service=info.scheme, http=info)
    return PortResult(**base, service=classify_banner(line) if line else None,
                      banner=_clean(line) or None)


def _ms(rtt: float | None) -> float | None:
    return None if rtt is None else round(rtt * 1000, 3)
