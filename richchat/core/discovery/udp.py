"""UDP socket helpers shared by the advertiser (server) and the listener (client)."""

from __future__ import annotations

import socket


def udp_socket(port: int, *, host: str = "0.0.0.0", reuse: bool = True) -> socket.socket:
    """A non-blocking IPv4 UDP socket bound to host:port, broadcast-capable.

    With ``reuse``, SO_REUSEADDR and SO_REUSEPORT let several servers (and a discovering
    client) on one host share the beacon port: every one of them gets each broadcast.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setblocking(False)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock
