"""An interrupted scan counts the ports it really scanned, in JSON and in the text summary."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
from datetime import datetime, timezone

from rich.console import Console

from richchat.core.scanner import scan
from richchat.core.scanner.models import ScanReport
from richchat.core.scanner.render import report_renderable


async def test_stopped_before_it_starts_scanned_nothing(silent_port: int) -> None:
    stop = asyncio.Event()
    stop.set()
    report = await scan("127.0.0.1", [silent_port, silent_port + 1], stop_event=stop)
    assert report.interrupted
    assert (report.ports_scanned, report.ports_requested) == (0, 2)
    assert json.loads(report.model_dump_json())["ports_scanned"] == 0


async def test_a_finished_scan_scanned_everything(silent_port: int, closed_port: int) -> None:
    report = await scan("127.0.0.1", [silent_port, closed_port])
    assert not report.interrupted
    assert (report.ports_scanned, report.ports_requested) == (2, 2)


def test_summary_says_how_many_of_how_many() -> None:
    report = ScanReport(
        host="lab", address="10.77.1.10", family="ipv4", method="connect", ports_scanned=1200,
        ports_requested=65535, closed=1199, started_at=datetime.now(timezone.utc),
        duration_s=0.11, interrupted=True,
    )
    out = io.StringIO()
    Console(file=out, width=120, no_color=True).print(report_renderable(report))
    assert "1200 of 65535 ports in 0.11 s" in out.getvalue()
    assert "interrupted" in out.getvalue()


def test_cli_json_has_both_counts(cli: list[str], cli_env: dict[str, str],
                                  closed_port: int) -> None:
    proc = subprocess.run([*cli, "scan", "127.0.0.1", "-p", str(closed_port), "--json"],
                          capture_output=True, text=True, env=cli_env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert (data["ports_scanned"], data["ports_requested"]) == (1, 1)
