"""The network guard: a test may talk to loopback only.

Every socket ``connect``/``connect_ex``/``sendto``/``sendmsg`` to an address outside
127.0.0.0/8 and ::1, and every name look-up (``getaddrinfo``, ``gethostbyname``, reverse
look-ups) of anything but a literal IP address or ``localhost``, is refused *before* the call
reaches the kernel or the resolver, and recorded as a violation. The pytest plugin
(:mod:`tests.netguard.plugin`) fails the test in whose setup, call or teardown a violation
happened, even when the code under test swallowed the exception.

The same guard runs in the Python processes the tests start (``richchat server``, ``scan``,
``send``, ...): the plugin puts ``tests/netguard/site`` on ``PYTHONPATH``, whose
``sitecustomize`` installs it, and a child records its violations in the file named by
``RICHCHAT_NET_GUARD_LOG`` for the plugin to find. A child inside a network namespace other
than the test run's own (a lab namespace, ``ip netns exec``) is left alone: nothing there can
reach a real network, and the lab tests need broadcasts, ARP and mDNS on the lab's bridge.
``RICHCHAT_NET_GUARD=strict`` keeps the guard on even there (the guard's own tests use it).

Only the standard library is used here: ``sitecustomize`` imports this in every child.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

#: file that child processes append their violations to (one line each)
LOG_ENV = "RICHCHAT_NET_GUARD_LOG"
#: st_ino of the network namespace the test run lives in (children compare theirs)
NETNS_ENV = "RICHCHAT_NET_GUARD_NETNS"
#: "strict": guard even inside another network namespace; "off": never (for debugging only)
MODE_ENV = "RICHCHAT_NET_GUARD"

#: names that resolve from /etc/hosts to loopback without asking a DNS server
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class NetworkGuardError(PermissionError):
    """A test tried to reach beyond loopback (raised instead of doing it)."""


class NameLookupBlocked(socket.gaierror):
    """A test tried to resolve a name through the machine's resolver (DNS)."""


_lock = threading.Lock()
_violations: list[str] = []
_installed = False
_real: dict[str, Any] = {}
_verdicts: dict[str, bool] = {}


def current_netns() -> int | None:
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return None


def take_violations() -> list[str]:
    """The violations recorded in this process since the last call."""
    with _lock:
        taken = list(_violations)
        _violations.clear()
    return taken


def _record(text: str) -> str:
    message = f"network guard: {text} (pid {os.getpid()})"
    with _lock:
        _violations.append(message)
    path = os.environ.get(LOG_ENV)
    if path and os.getpid() != _owner_pid:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (message.replace("\n", " ") + "\n").encode("utf-8", "replace"))
            finally:
                os.close(fd)
        except OSError:
            pass
    return message


_owner_pid = -1  # the pytest process: it reads its own violations from memory


def _host_text(host: object) -> str | None:
    if isinstance(host, bytes):
        return host.decode("ascii", "replace")
    if isinstance(host, str):
        return host
    return None


def is_literal_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def is_local_name(host: str) -> bool:
    return host.lower().rstrip(".") in LOCAL_NAMES


def is_loopback_ip(host: str) -> bool:
    """127.0.0.0/8, ::1, ::ffff:127.x.y.z, and the unspecified addresses (which the kernel
    treats as this machine when connecting)."""
    verdict = _verdicts.get(host)
    if verdict is not None:
        return verdict
    import ipaddress

    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        verdict = False
    else:
        mapped = getattr(ip, "ipv4_mapped", None)
        verdict = ip.is_loopback or ip.is_unspecified or bool(mapped and mapped.is_loopback)
    if len(_verdicts) < 4096:
        _verdicts[host] = verdict
    return verdict


def destination_allowed(family: int, address: object) -> bool:
    """May a socket of ``family`` connect or send to ``address``?"""
    if family == getattr(socket, "AF_UNIX", -1) or family == getattr(socket, "AF_NETLINK", -1):
        return True  # this machine's kernel or processes
    if family == getattr(socket, "AF_PACKET", -1):
        return isinstance(address, tuple) and bool(address) and address[0] == "lo"
    if family in (socket.AF_INET, socket.AF_INET6):
        if not isinstance(address, tuple) or not address:
            return False
        host = _host_text(address[0])
        if host is None:
            return False
        if is_literal_ip(host):
            return is_loopback_ip(host)
        return is_local_name(host)
    return False


def _check_destination(sock: socket.socket, address: object, what: str) -> None:
    if not destination_allowed(sock.family, address):
        raise NetworkGuardError(_record(f"{what} to {address!r} is not loopback"))


def _check_name(host: object, what: str) -> None:
    text = _host_text(host)
    if host is None or text == "" or text is None:
        return
    if is_literal_ip(text) or is_local_name(text):
        return
    message = _record(f"{what}({text!r}) would ask the machine's resolver (DNS)")
    raise NameLookupBlocked(socket.EAI_NONAME, message)


# --------------------------------------------------------------------------- the wrappers


def _connect(self: socket.socket, address: Any) -> None:
    _check_destination(self, address, "connect")
    _real["connect"](self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    _check_destination(self, address, "connect")
    result: int = _real["connect_ex"](self, address)
    return result


def _sendto(self: socket.socket, data: Any, *args: Any) -> int:
    if args:
        _check_destination(self, args[-1], "sendto")
    result: int = _real["sendto"](self, data, *args)
    return result


def _sendmsg(self: socket.socket, buffers: Any, *args: Any, **kw: Any) -> int:
    address = kw.get("address", args[2] if len(args) >= 3 else None)
    if address is not None:
        _check_destination(self, address, "sendmsg")
    result: int = _real["sendmsg"](self, buffers, *args, **kw)
    return result


def _getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
    flags = kw.get("flags", args[4] if len(args) >= 5 else 0)
    if not flags & socket.AI_NUMERICHOST:  # AI_NUMERICHOST never asks a resolver
        _check_name(host, "getaddrinfo")
    return _real["getaddrinfo"](host, *args, **kw)


def _gethostbyname(host: Any) -> Any:
    _check_name(host, "gethostbyname")
    return _real["gethostbyname"](host)


def _gethostbyname_ex(host: Any) -> Any:
    _check_name(host, "gethostbyname_ex")
    return _real["gethostbyname_ex"](host)


def _gethostbyaddr(host: Any) -> Any:
    text = _host_text(host) or ""
    if not (is_local_name(text) or (is_literal_ip(text) and is_loopback_ip(text))):
        message = _record(f"gethostbyaddr({text!r}) would ask the machine's resolver (DNS)")
        raise NameLookupBlocked(socket.EAI_NONAME, message)
    return _real["gethostbyaddr"](host)


def _getnameinfo(sockaddr: Any, flags: int) -> Any:
    host = _host_text(sockaddr[0]) if isinstance(sockaddr, tuple) and sockaddr else None
    numeric = bool(flags & socket.NI_NUMERICHOST)
    if not numeric and not (host and is_literal_ip(host) and is_loopback_ip(host)):
        message = _record(f"getnameinfo({sockaddr!r}) would ask the machine's resolver (DNS)")
        raise NameLookupBlocked(socket.EAI_NONAME, message)
    return _real["getnameinfo"](sockaddr, flags)


_METHODS = {"connect": _connect, "connect_ex": _connect_ex, "sendto": _sendto,
            "sendmsg": _sendmsg}
_FUNCTIONS = {"getaddrinfo": _getaddrinfo, "gethostbyname": _gethostbyname,
              "gethostbyname_ex": _gethostbyname_ex, "gethostbyaddr": _gethostbyaddr,
              "getnameinfo": _getnameinfo}


def install(*, owner: bool = False) -> None:
    """Wrap the socket module (idempotent). ``owner``: this is the pytest process."""
    global _installed, _owner_pid
    if owner:
        _owner_pid = os.getpid()
    if _installed:
        return
    for name, wrapper in _METHODS.items():
        if hasattr(socket.socket, name):
            _real[name] = getattr(socket.socket, name)
            setattr(socket.socket, name, wrapper)
    for name, func in _FUNCTIONS.items():
        if hasattr(socket, name):
            _real[name] = getattr(socket, name)
            setattr(socket, name, func)
    _installed = True


def install_in_child() -> None:
    """From ``sitecustomize``: guard this process unless it lives in another namespace."""
    mode = os.environ.get(MODE_ENV, "")
    if mode == "off":
        return
    if mode != "strict":
        expected = os.environ.get(NETNS_ENV)
        mine = current_netns()
        if expected and mine is not None and str(mine) != expected:
            return  # a lab namespace: nothing here reaches a real network
    install()
