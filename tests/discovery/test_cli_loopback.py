"""``richchat discover`` as a subprocess on loopback only (--interface lo, no ARP, no mDNS)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from richchat.core.discovery.advertise import Advertiser, ServerInfo
from richchat.core.discovery.models import DiscoveryReport
from richchat.core.exit_codes import ExitStatus
from tests.discovery.conftest import WINDOW
from tests.discovery.labtools import run_on_pty

LOOP = "127.255.255.255"


def loop_args(port: int, *extra: str) -> list[str]:
    return ["discover", "--interface", "lo", "--no-arp", "--no-mdns", "--broadcast", LOOP,
            "--beacon-port", str(port), "--timeout", str(WINDOW), *extra]


async def run_cli(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def server(port: int) -> Advertiser:
    info = ServerInfo(server_id="cli1", name="cli-lab", port=5050, users=4, tls=False, version=1)
    return Advertiser(lambda: info, bind_host="127.0.0.1", beacon_port=port, beacon_addrs=[LOOP],
                      interval=3600, mdns=False)


async def test_json_document_validates_against_the_models(
    cli: list[str], cli_env: dict[str, str], beacon_port: int
) -> None:
    adv = server(beacon_port)
    await adv.start()
    try:
        code, out, err = await run_cli([*cli, *loop_args(beacon_port, "--json")], cli_env)
    finally:
        await adv.stop()
    assert code == 0, err
    report = DiscoveryReport.model_validate_json(out)
    assert [(s.name, s.address, s.port, s.users, s.found_via) for s in report.servers] == [
        ("cli-lab", "127.0.0.1", 5050, 4, ["query"])]
    assert [i.name for i in report.interfaces] == ["lo"]
    assert json.loads(out)["exit_status"] == 0
    assert err == ""  # no progress display when stderr is not a terminal


async def test_tables_on_stdout(cli: list[str], cli_env: dict[str, str],
                                beacon_port: int) -> None:
    adv = server(beacon_port)
    await adv.start()
    try:
        code, out, err = await run_cli([*cli, *loop_args(beacon_port)], cli_env)
    finally:
        await adv.stop()
    assert code == 0, err
    for title in ("Advertised", "Discovered", "Local Interface"):
        assert title in out
    assert "cli-lab" in out and "127.0.0.1" in out
    assert "\x1b[" not in out  # NO_COLOR and not a terminal


async def test_an_unusable_columns_variable_is_ignored(cli: list[str], cli_env: dict[str, str],
                                                      beacon_port: int) -> None:
    """COLUMNS empty, not a number or 0 (piped output): the tables at the default width, not
    an error after the whole discovery (``invalid literal for int()``) or nothing at all."""
    adv = server(beacon_port)
    await adv.start()
    try:
        for columns in ("", " ", "abc", "0", "-5", "1.5"):
            code, out, err = await run_cli([*cli, *loop_args(beacon_port)],
                                           dict(cli_env, COLUMNS=columns))
            assert code == 0, (columns, err)
            assert err == "", (columns, err)
            assert "Local Interface" in out and "127.0.0.1" in out, (columns, out)
    finally:
        await adv.stop()


async def test_os_without_nmap_prints_the_report_then_exits_tool_missing(
    cli: list[str], cli_env: dict[str, str], beacon_port: int
) -> None:
    env = dict(cli_env, PATH="/nonexistent")  # no nmap on PATH
    adv = server(beacon_port)
    await adv.start()
    try:
        code, out, err = await run_cli([*cli, *loop_args(beacon_port, "--os", "--json")], env)
    finally:
        await adv.stop()
    assert code == ExitStatus.TOOL_MISSING
    report = DiscoveryReport.model_validate_json(out)  # the report was still printed
    assert [s.name for s in report.servers] == ["cli-lab"]
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "nmap program is not installed" in lines[0] and "install nmap" in lines[0]


async def test_usage_errors_are_one_line(cli: list[str], cli_env: dict[str, str],
                                         beacon_port: int) -> None:
    code, out, err = await run_cli(
        [*cli, "discover", "--no-arp", "--no-mdns", "--broadcast", "255.255.255.255",
         "--interface", "lo"], cli_env)
    assert code == ExitStatus.USAGE
    assert out == ""
    assert err.strip().count("\n") == 0 and "not allowed" in err
    code, _, err = await run_cli([*cli, "discover", "--interface", "nope0", "--no-mdns"],
                                 cli_env)
    assert code == ExitStatus.USAGE and "no such network interface: nope0" in err


async def test_progress_shows_on_a_terminal_and_stdout_stays_data(
    cli: list[str], cli_env: dict[str, str], beacon_port: int
) -> None:
    adv = server(beacon_port)
    await adv.start()
    try:
        code, out, term = await asyncio.to_thread(
            run_on_pty, [*cli, *loop_args(beacon_port, "--json")], cli_env)
    finally:
        await adv.stop()
    assert code == 0
    assert b"advertised: found cli-lab at 127.0.0.1:5050" in term  # the live status line
    report = DiscoveryReport.model_validate_json(out)  # nothing but JSON on stdout
    assert [s.name for s in report.servers] == ["cli-lab"]


#: ``richchat discover ARGS`` in-process; then which output libraries it had imported
IMPORTS_PROBE = """\
import sys
sys.argv = ["richchat", *sys.argv[1:]]
try:
    from richchat.cli import main; main()
except SystemExit as exc:
    print("exit", exc.code)
print("loaded", ",".join(m for m in ("rich", "richchat.core.discovery.render")
                         if m in sys.modules) or "none")
"""


async def test_json_without_notices_never_imports_rich(
    cli_env: dict[str, str], beacon_port: int
) -> None:
    # rich (about 0.1 s of imports) is for tables, progress and notices: a --json run that
    # has none of them starts its work without it
    adv = server(beacon_port)
    await adv.start()
    try:
        code, out, err = await run_cli(
            [sys.executable, "-c", IMPORTS_PROBE, *loop_args(beacon_port, "--json")], cli_env)
    finally:
        await adv.stop()
    assert code == 0, err
    assert out.splitlines()[-2:] == ["exit 0", "loaded none"], out + err
