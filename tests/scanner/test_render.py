"""The results table: joinable servers stand out, remote text is never markup."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from rich.console import Console

from richchat.core.scanner.models import HttpInfo, PortResult, RichchatInfo, ScanReport
from richchat.core.scanner.render import report_renderable


def _render(report: ScanReport) -> str:
    out = io.StringIO()
    Console(file=out, width=120, no_color=True, highlight=False).print(report_renderable(report))
    return out.getvalue()


def _report(**kw: object) -> ScanReport:
    base: dict[str, object] = dict(
        host="lab", address="10.77.1.10", family="ipv4", method="connect",
        ports_scanned=100, closed=97, started_at=datetime.now(timezone.utc), duration_s=0.5,
    )
    base.update(kw)
    return ScanReport.model_validate(base)


def test_table_lists_services_and_join_hint() -> None:
    report = _report(open=[
        PortResult(port=22, service="ssh", banner="SSH-2.0-OpenSSH_9.2p1"),
        PortResult(port=5050, service="richchat", joinable=True, richchat=RichchatInfo(
            server_name="office", agent="richchat-server/0.1.0", users=3)),
        PortResult(port=8080, service="http", http=HttpInfo(
            scheme="http", status=200, reason="OK", server="nginx", title="Wiki")),
    ])
    text = _render(report)
    assert "22/tcp" in text and "SSH-2.0-OpenSSH_9.2p1" in text
    assert "joinable 'office' richchat-server/0.1.0, 3 online, TLS off" in text
    assert "200 OK" in text and "nginx" in text and "Wiki" in text
    assert "3 open, 97 closed, 0 filtered; 1 joinable" in text
    assert "richchat join 10.77.1.10:5050" in text


def test_remote_text_is_not_markup() -> None:
    report = _report(open=[PortResult(port=25, banner="220 [bold red]evil[/bold red] smtp")])
    text = _render(report)
    assert "[bold red]evil[/bold red]" in text


def test_interrupted_and_filtered_are_shown() -> None:
    report = _report(filtered=[81, 82], interrupted=True)
    text = _render(report)
    assert "81/tcp" in text and "filtered" in text
    assert "interrupted" in text


def test_ipv6_join_hint_has_brackets() -> None:
    report = _report(address="::1", family="ipv6", open=[PortResult(
        port=5050, service="richchat", joinable=True,
        richchat=RichchatInfo(agent="richchat-server/0.1.0"))])
    assert "richchat join [::1]:5050" in _render(report)


def test_one_port_is_one_port() -> None:
    """``richchat scan HOST -p 5050`` said ``1 ports in 0.03 s`` (the fifth exploratory pass)."""
    assert "1 port in 0.50 s: 0 open, 1 closed" in _render(_report(ports_scanned=1, closed=1))
    text = _render(_report(ports_scanned=0, ports_requested=1, closed=0, interrupted=True))
    assert "0 of 1 port in" in text
    assert "100 ports in" in _render(_report())
