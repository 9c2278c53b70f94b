"""Stateless SYN scan through a raw socket (root or CAP_NET_RAW).

Packets are crafted here with :mod:`struct` rather than scapy: building 65,535 packets with
scapy takes seconds by itself, while a precomputed header and an incremental ones'-complement
checksum cost about a microsecond each. The scan is stateless in the masscan sense: the
sequence number of every SYN is a keyed hash of its destination port, so an answer is
recognised from its acknowledgement number alone, and the kernel of the scanning host answers
every SYN-ACK with a RST (the source port is reserved by a bound, non-listening TCP socket,
so no local application can be confused by the answers). A classic BPF filter attached to the
raw socket keeps all other TCP traffic out of the receive queue.

Each port gets one SYN; ports that got no answer after an RTT-based wait get a second SYN
and a full timeout; still silent ports are reported as filtered.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

from richchat.core.errors import PrivilegeError
from richchat.core.scanner.engine import RttEstimator, SweepResult

SO_ATTACH_FILTER = 26
_TCP = struct.Struct("!HHIIBBHHHBBH")  # header with a 4-byte MSS option: 24 bytes
_TCP_LEN = 24
_REPLY = struct.Struct("!HHIIBB")  # source port, destination port, seq, ack, offset, flags
_SYN = 0x02
_RST = 0x04
_ACK = 0x10
_WINDOW = 1024
_MSS = 1460
_BATCH = 512  # SYNs sent between two drains of the receive queue

PRIVILEGE_HINT = (
    "run as root, or grant the capability: sudo setcap cap_net_raw+ep "
    "\"$(readlink -f \"$(command -v python3)\")\"; or drop --syn for a connect scan"
)


def require_raw_privilege(family: int = socket.AF_INET) -> None:
    """Raise :class:`PrivilegeError` (one clear line) unless a raw socket can be opened."""
    _open_raw(family).close()


def _open_raw(family: int) -> socket.socket:
    try:
        return socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_TCP)
    except PermissionError:
        raise PrivilegeError(
            "--syn needs root or CAP_NET_RAW to open a raw socket", hint=PRIVILEGE_HINT
        ) from None


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def _bpf(prog: list[tuple[int, int, int, int]]) -> tuple[bytes, Any]:
    buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in prog))
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    return fprog, buf  # keep buf alive while the kernel copies the program


def _filter_v4(src: bytes, sport: int) -> list[tuple[int, int, int, int]]:
    (src_int,) = struct.unpack("!I", src)
    return [
        (0x20, 0, 0, 12),  # ld [12]            source address
        (0x15, 0, 4, src_int),  # jeq #target     else drop
        (0xB1, 0, 0, 0),  # ldxb 4*([0]&0xf)    IP header length
        (0x48, 0, 0, 2),  # ldh [x+2]           TCP destination port
        (0x15, 0, 1, sport),  # jeq #sport       else drop
        (0x06, 0, 0, 0xFFFF),  # ret accept
        (0x06, 0, 0, 0),  # ret drop
    ]


def _filter_v6(sport: int) -> list[tuple[int, int, int, int]]:
    # IPv6 raw sockets deliver the TCP header without the IP header.
    return [
        (0x28, 0, 0, 2),  # ldh [2]  TCP destination port
        (0x15, 0, 1, sport),
        (0x06, 0, 0, 0xFFFF),
        (0x06, 0, 0, 0),
    ]


def _source_address(family: int, sockaddr: tuple[Any, ...]) -> str:
    """The local address the kernel would use towards the target (sends nothing)."""
    with socket.socket(family, socket.SOCK_DGRAM) as udp:
        udp.connect(sockaddr)
        return str(udp.getsockname()[0])


class SynSweep:
    def __init__(
        self,
        family: int,
        address: tuple[Any, ...],
        *,
        timeout: float = 1.0,
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        on_open: Callable[[int, float], None] | None = None,
    ) -> None:
        self.family = family
        self.address = address
        self.timeout = timeout
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.on_open = on_open
        self.rtt = RttEstimator()
        self.result = SweepResult()
        self.key = secrets.randbits(32)
        self.state = bytearray(65536)  # per port: 0 no answer yet, 1 closed (RST), 2 open
        self.sent_at = [0.0] * 65536
        self.answered = 0
        self.opened = 0
        self._open_rtt: dict[int, float] = {}
        host = address[0].partition("%")[0]
        self._canonical = socket.inet_ntop(family, socket.inet_pton(family, host))
        self._last_progress = 0.0

    def run(self, ports: Sequence[int]) -> SweepResult:
        family = self.family
        target = self.address[0]
        sockaddr = (target, 0, *self.address[1:])
        raw = _open_raw(family)
        reserve = socket.socket(family, socket.SOCK_STREAM)
        try:
            src = _source_address(family, (target, 9, *self.address[1:]))
            reserve.bind((src, 0, *([0, self.address[2]] if family == socket.AF_INET6 else [])))
            sport = reserve.getsockname()[1]
            packed_dst = socket.inet_pton(family, target)
            packed_src = socket.inet_pton(family, src)
            if family == socket.AF_INET:
                prog, keep = _bpf(_filter_v4(packed_dst, sport))
                tail = struct.pack("!BBH", 0, socket.IPPROTO_TCP, _TCP_LEN)
                pseudo = packed_src + packed_dst + tail
            else:
                prog, keep = _bpf(_filter_v6(sport))
                tail = struct.pack("!IxxxB", _TCP_LEN, socket.IPPROTO_TCP)
                pseudo = packed_src + packed_dst + tail
            raw.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, prog)
            del keep
            for opt in (33, socket.SO_RCVBUF):  # SO_RCVBUFFORCE (root), else the capped one
                with contextlib.suppress(OSError):
                    raw.setsockopt(socket.SOL_SOCKET, opt, 32 * 1024 * 1024)
                    break
            raw.setblocking(False)
            self._drain(raw)  # anything queued before the filter was attached
            base = _sum16(pseudo) + _sum16(
                _TCP.pack(sport, 0, 0, 0, (_TCP_LEN // 4) << 4, _SYN, _WINDOW, 0, 0, 2, 4, _MSS)
            )
            self._round(raw, sockaddr, sport, base, ports, first=True)
            missing = [p for p in ports if not self.state[p]]
            if missing and not self.result.interrupted:
                self._round(raw, sockaddr, sport, base, missing, first=False)
        finally:
            raw.close()
            reserve.close()
        res = self.result
        state = self.state
        for port in ports:
            st = state[port]
            if st == 2:
                res.open[port] = self._open_rtt.get(port, 0.0)
            elif st == 1:
                res.closed += 1
            elif not res.interrupted:
                res.filtered.append(port)
        res.srtt = self.rtt.srtt
        self._progress(force=True)
        return res

    def _progress(self, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        if force or now - self._last_progress >= 0.05:
            self._last_progress = now
            self.on_progress(self.answered, self.opened)

    def _round(
        self,
        raw: socket.socket,
        sockaddr: tuple[Any, ...],
        sport: int,
        base: int,
        ports: Sequence[int],
        *,
        first: bool,
    ) -> None:
        pack = _TCP.pack
        offset = (_TCP_LEN // 4) << 4
        key = self.key
        sendto = raw.sendto
        sent_at = self.sent_at
        monotonic = time.monotonic
        answered_before = self.answered
        i = 0
        n = len(ports)
        while i < n:
            if self.should_stop is not None and self.should_stop():
                self.result.interrupted = True
                return
            now = monotonic()
            for port in ports[i : i + _BATCH]:
                seq = ((port * 2654435761) ^ key) & 0xFFFFFFFF
                csum = base + port + (seq >> 16) + (seq & 0xFFFF)
                csum = (csum & 0xFFFF) + (csum >> 16)
                csum = ~((csum & 0xFFFF) + (csum >> 16)) & 0xFFFF
                pkt = pack(sport, port, seq, 0, offset, _SYN, _WINDOW, csum, 0, 2, 4, _MSS)
                while True:
                    try:
                        sendto(pkt, sockaddr)
                        break
                    except BlockingIOError:
                        self._wait(raw, 0.001)
                    except OSError as exc:
                        if exc.errno in (errno.ENOBUFS, errno.EAGAIN):
                            self._wait(raw, 0.001)
                        elif exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                            break  # no route: the port stays unanswered (filtered)
                        else:
                            raise
                sent_at[port] = now
            i += _BATCH
            self._drain(raw)
            self._progress()
        # wait for the stragglers: RTT-adapted on the first round, full timeout on the retry
        deadline_for = self.rtt.timeout(self.timeout) if first else self.timeout
        deadline = monotonic() + deadline_for
        while monotonic() < deadline:
            if self.should_stop is not None and self.should_stop():
                self.result.interrupted = True
                return
            # every answer in this round is for a port of this round
            if self.answered - answered_before >= n:
                break
            self._wait(raw, min(0.05, max(0.0, deadline - monotonic())))
            self._progress()

    def _wait(self, raw: socket.socket, timeout: float) -> None:
        select.select([raw], [], [], timeout)
        self._drain(raw)

    def _drain(self, raw: socket.socket) -> None:
        """Read every queued answer (non-blocking) and record it."""
        v4 = self.family == socket.AF_INET
        target = self._canonical
        key = self.key
        state = self.state
        unpack_from = _REPLY.unpack_from
        recv, recvfrom = raw.recv, raw.recvfrom
        now = time.monotonic()
        answered = self.answered
        try:
            while True:
                try:
                    if v4:
                        data = recv(128)
                        hl = (data[0] & 0x0F) << 2
                    else:
                        data, peer = recvfrom(128)
                        if peer[0].partition("%")[0] != target:
                            continue
                        hl = 0
                except (BlockingIOError, InterruptedError):
                    return
                if len(data) < hl + 14:
                    continue
                port, _dport, _seq, ack, _off, flags = unpack_from(data, hl)
                # the acknowledgement number that answers our SYN to this port: its cookie + 1
                # (computed here, per answer, rather than as a 65,536-entry table per worker)
                if ack != (((port * 2654435761) ^ key) + 1) & 0xFFFFFFFF or state[port]:
                    continue  # not an answer to one of our SYNs, or answered already
                if flags & _RST:
                    state[port] = 1
                    answered += 1
                    if answered & 15 == 1:  # a sample of the closed ports is enough
                        self.rtt.update(max(0.0, now - self.sent_at[port]))
                elif flags & (_SYN | _ACK) == (_SYN | _ACK):
                    state[port] = 2
                    answered += 1
                    self.opened += 1
                    elapsed = max(0.0, now - self.sent_at[port])
                    self.rtt.update(elapsed)
                    self._open_rtt[port] = elapsed
                    if self.on_open is not None:
                        self.on_open(port, elapsed)
        finally:
            self.answered = answered


def syn_sweep(
    family: int, address: tuple[Any, ...], ports: Sequence[int], **kwargs: Any
) -> SweepResult:
    """SYN-scan ``ports`` of one host; raises :class:`PrivilegeError` without CAP_NET_RAW."""
    if os.name != "posix":
        raise PrivilegeError("--syn is only supported on Linux")
    return SynSweep(family, address, **kwargs).run(list(ports))
