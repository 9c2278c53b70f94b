"""``richchat join`` with no address: the wizard, end to end in a namespace lab.

The server runs in one lab host (beaconing to the lab's broadcast address only); ``richchat
join`` runs in another lab host inside a tmux terminal. Discovery, the port scan and the chat
all stay on the lab's private bridge.
"""

from __future__ import annotations

import os
import select
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from richchat.core.exit_codes import ExitStatus
from tests.client.servers import LISTEN_RE, REPO_ROOT, cli_env
from tests.netlab import Host, Lab
from tests.tui.test_tmux_e2e import Tmux

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HOLD_NAME = (
    "import asyncio, sys\n"
    "from richchat.core.client import ChatClient\n"
    "async def main():\n"
    "    c = ChatClient(sys.argv[1], int(sys.argv[2]))\n"
    "    await c.connect(); await c.register(sys.argv[3])\n"
    "    print('registered', flush=True)\n"
    "    async for _ in c: pass\n"
    "asyncio.run(main())\n"
)


def start_lab_server(lab: Lab, host: Host, data_dir: Path, *extra: str) -> int:
    argv = [sys.executable, "-m", "richchat", "server", "--host", "0.0.0.0", "--port", "5050",
            "--name", "labchat", "--data-dir", str(data_dir), "--beacon-addr", lab.broadcast,
            "--beacon-interval", "1", "--no-mdns", *extra]
    proc = lab.popen(host, argv, env=cli_env(), stdout=subprocess.PIPE,
                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.5)[0]:
            m = LISTEN_RE.search(proc.stdout.readline().decode())
            if m:
                return int(m.group(2))
    raise AssertionError("lab server did not start")


@pytest.fixture
def lan(lab: Lab, tmp_path: Path) -> Iterator[tuple[Lab, Host, Host, int]]:
    server = lab.add_host("srv")
    client = lab.add_host("cli")
    port = start_lab_server(lab, server, tmp_path / "data")
    yield lab, server, client, port


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    session = Tmux()
    try:
        yield session
    finally:
        session.kill()


def start_join(tmux: Tmux, client: Host, *extra: str) -> None:
    inner = ["env", f"PYTHONPATH={REPO_ROOT}", "TERM=xterm-256color", "NO_COLOR=",
             f"RICHCHAT_KNOWN_SERVERS={os.environ['RICHCHAT_KNOWN_SERVERS']}",
             sys.executable, "-m", "richchat", "join", *extra]
    command = " ".join(shlex.quote(p) for p in ["ip", "netns", "exec", client.ns, *inner])
    # keep the pane (and any error message) after richchat exits, to show it on failure
    command = f"{command}; echo \"[richchat exited with $?]\"; sleep 120"
    result = tmux.run("new-session", "-d", "-s", "main", "-x", "120", "-y", "40", command)
    assert result.returncode == 0, result.stderr


def flat(screen: str) -> str:
    """The screen's text with line wraps undone (messages wrap where the terminal ends)."""
    return " ".join(screen.split())


def answer(tmux: Tmux, text: str) -> None:
    if text:
        tmux.run("send-keys", "-t", "main", "-l", text)
    tmux.run("send-keys", "-t", "main", "Enter")


def test_wizard_advertised_server(lan: tuple[Lab, Host, Host, int], tmux: Tmux) -> None:
    _lab, server, client, _ = lan
    start_join(tmux, client)
    screen = tmux.wait_for(lambda s: "Pick a number" in s, "the discovery table", timeout=60)
    assert "Advertised servers" in screen and "labchat" in screen
    assert f"{server.ip}:5050" in screen
    assert "Local interfaces" in screen
    answer(tmux, "1")
    tmux.wait_for(lambda s: "Nickname" in s, "the nickname prompt")
    answer(tmux, "zoe")
    tmux.wait_for(lambda s: "nick: zoe" in s and "● connected" in s, "the chat screen")
    answer(tmux, "hello lab")
    tmux.wait_for(lambda s: "<zoe> hello lab" in s, "the echo")


def test_wizard_scan_and_refused_nick(lan: tuple[Lab, Host, Host, int], tmux: Tmux) -> None:
    lab, server, client, port = lan
    holder = lab.popen(client, [sys.executable, "-c", HOLD_NAME, server.ip, str(port), "taken"],
                       env=cli_env(), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert holder.stdout is not None and b"registered" in holder.stdout.readline()
    start_join(tmux, client)
    screen = tmux.wait_for(lambda s: "Pick a number" in s, "the discovery table", timeout=60)
    assert "Discovered hosts" in screen
    answer(tmux, server.ip)  # typed by hand, no port: scan it
    screen = tmux.wait_for(lambda s: "Pick a number or type a port" in s, "the port table",
                           timeout=120)
    assert "5050" in screen and "joinable" in screen
    answer(tmux, "1")  # the joinable port is listed first
    tmux.wait_for(lambda s: "Nickname" in s, "the nickname prompt")
    answer(tmux, "taken")
    screen = tmux.wait_for(lambda s: "refused" in s, "the refusal")
    assert "name_taken" in screen
    answer(tmux, "fresh")
    tmux.wait_for(lambda s: "nick: fresh" in s and "● connected" in s, "the chat screen")


def test_join_without_terminal_explains(tmp_path: Path) -> None:
    # No terminal: the wizard refuses before it sends anything.
    result = subprocess.run([sys.executable, "-m", "richchat", "join"], capture_output=True,
                            text=True, env=cli_env(), stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == ExitStatus.USAGE
    assert "no server address" in result.stderr


def test_join_with_address_but_no_terminal() -> None:
    result = subprocess.run([sys.executable, "-m", "richchat", "join", "127.0.0.1:5050"],
                            capture_output=True, text=True, env=cli_env(),
                            stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == ExitStatus.USAGE
    assert "needs a terminal" in result.stderr and "richchat send" in result.stderr


def test_join_bad_address() -> None:
    result = subprocess.run([sys.executable, "-m", "richchat", "join", "host:99999"],
                            capture_output=True, text=True, env=cli_env(),
                            stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == ExitStatus.USAGE
    assert "bad port" in result.stderr


def test_wizard_http_port_first_then_the_chat_port(
    lan: tuple[Lab, Host, Host, int], tmux: Tmux
) -> None:
    """Issue #18: a port that is not a chat server goes back to the port list with the reason
    (no nickname asked); the joinable port, listed first, then leads into the chat."""
    lab, server, client, _port = lan
    web = lab.popen(server, [sys.executable, "-m", "http.server", "8000", "--bind", server.ip],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    stdin=subprocess.DEVNULL)
    probe = lab.run(client, [sys.executable, "-c",
                             "import socket, sys, time\n"
                             "end = time.monotonic() + 30\n"
                             "while time.monotonic() < end:\n"
                             "    try: socket.create_connection((sys.argv[1], 8000), 1).close(); break\n"
                             "    except OSError: time.sleep(0.1)\n", server.ip])
    assert probe.returncode == 0 and web.poll() is None
    start_join(tmux, client)
    tmux.wait_for(lambda s: "Pick a number" in s, "the discovery table", timeout=60)
    answer(tmux, server.ip)  # a host: scan it
    screen = tmux.wait_for(lambda s: "Pick a number or type a port" in s, "the port table",
                           timeout=120)
    ports = screen[screen.index("Open ports on"):]
    rows = [line for line in ports.splitlines() if "5050" in line or "8000" in line]
    assert "5050" in rows[0] and "joinable" in rows[0], screen  # joinable first
    assert "8000" in rows[1] and "http" in rows[1], screen
    answer(tmux, "2")  # the HTTP server
    screen = tmux.wait_for(lambda s: "not a richchat server" in flat(s), "the reason",
                           timeout=30)
    assert "Nickname" not in screen  # checked before any nickname is asked
    tmux.wait_for(lambda s: s.rstrip().endswith("Enter quits:"), "the port list again")
    answer(tmux, "1")
    tmux.wait_for(lambda s: "Nickname" in s, "the nickname prompt")
    answer(tmux, "hank")
    tmux.wait_for(lambda s: "nick: hank" in s and "● connected" in s, "the chat screen")
    answer(tmux, "made it")
    tmux.wait_for(lambda s: "<hank> made it" in s, "the echo")


def test_wizard_refused_host_goes_back_to_the_host_list(
    lan: tuple[Lab, Host, Host, int], tmux: Tmux
) -> None:
    _lab, server, client, _port = lan
    start_join(tmux, client)
    tmux.wait_for(lambda s: "Pick a number" in s, "the discovery table", timeout=60)
    answer(tmux, f"{server.ip}:5999")  # nothing listens there
    screen = tmux.wait_for(
        lambda s: "connection refused" in flat(s) and "pick another host" in flat(s),
        "the reason", timeout=30)
    assert "Nickname" not in screen
    tmux.wait_for(lambda s: s.rstrip().endswith("Enter quits:"), "the host list again")
    answer(tmux, "")  # Enter quits
    tmux.wait_for(lambda s: "[richchat exited with 0]" in s, "a clean exit")


def test_wizard_ctrl_c_quits_at_once(lan: tuple[Lab, Host, Host, int], tmux: Tmux) -> None:
    _lab, _server, client, _port = lan
    start_join(tmux, client)
    tmux.wait_for(lambda s: "Pick a number" in s, "the discovery table", timeout=60)
    tmux.run("send-keys", "-t", "main", "C-c")
    screen = tmux.wait_for(lambda s: "[richchat exited with" in s, "the exit")
    assert "[richchat exited with 130]" in screen and "Traceback" not in screen


@pytest.fixture
def tls_lan(lab: Lab, tmp_path: Path) -> Iterator[tuple[Lab, Host, Host, str]]:
    """A TLS server in the lab; its key's fingerprint (from --show-fingerprint)."""
    server = lab.add_host("srv")
    client = lab.add_host("cli")
    data = tmp_path / "data"
    shown = subprocess.run([sys.executable, "-m", "richchat", "server", "--show-fingerprint",
                            "--data-dir", str(data)], env=cli_env(), capture_output=True,
                           text=True, check=True)
    start_lab_server(lab, server, data, "--tls")
    yield lab, server, client, shown.stdout.strip()


def test_wizard_tls_server_trusted_and_remembered(tls_lan: tuple[Lab, Host, Host, str],
                                                  tmux: Tmux) -> None:
    """Discovery shows TLS and the advertised fingerprint; the first contact asks, shows the
    key and says it matches the advertised one; 'r' pins it; the chat is TLS."""
    _lab, server, client, fp = tls_lan
    start_join(tmux, client)
    screen = tmux.wait_for(lambda s: "Pick a number" in s, "the discovery table", timeout=60)
    assert "labchat" in screen and "TLS" in screen
    answer(tmux, "1")
    screen = tmux.wait_for(lambda s: "Trust it?" in s, "the trust question", timeout=30)
    assert fp in screen and "is the one the server advertised" in flat(screen)
    answer(tmux, "r")
    tmux.wait_for(lambda s: "Nickname" in s, "the nickname prompt")
    answer(tmux, "tess")
    screen = tmux.wait_for(lambda s: "nick: tess" in s and "● connected" in s, "the chat")
    assert "TLS 1.3 · " + fp[:19] in screen
    known = Path(os.environ["RICHCHAT_KNOWN_SERVERS"]).read_text()
    assert f"{server.ip}:5050 {fp} " in known


def test_wizard_scanned_tls_server_trusted_this_time(tls_lan: tuple[Lab, Host, Host, str],
                                                     tmux: Tmux) -> None:
    _lab, server, client, fp = tls_lan
    start_join(tmux, client)
    tmux.wait_for(lambda s: "Pick a number" in s, "the discovery table", timeout=60)
    answer(tmux, server.ip)  # a host typed by hand: scanned
    screen = tmux.wait_for(lambda s: "Pick a number or type a port" in s, "the port table",
                           timeout=120)
    ports = screen[screen.index("Open ports on"):]
    row = next(line for line in ports.splitlines() if "5050" in line)
    assert "joinable" in row and "TLS" in row, screen
    answer(tmux, "1")
    screen = tmux.wait_for(lambda s: "Trust it?" in s, "the trust question", timeout=30)
    assert fp in screen
    answer(tmux, "o")
    tmux.wait_for(lambda s: "Nickname" in s, "the nickname prompt")
    answer(tmux, "tom")
    screen = tmux.wait_for(lambda s: "nick: tom" in s and "● connected" in s, "the chat")
    assert "(trusted this time)" in flat(screen)
    assert not Path(os.environ["RICHCHAT_KNOWN_SERVERS"]).exists()
