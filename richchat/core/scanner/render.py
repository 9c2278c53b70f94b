"""Rich rendering of a :class:`ScanReport`, and the progress bar shown while scanning."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from richchat.core.scanner.models import PortResult, ScanProgress, ScanReport

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


def _details(p: PortResult) -> Text:
    text = Text()
    if p.richchat is not None:
        rc = p.richchat
        text.append("joinable ", style="bold green")
        if rc.server_name:
            text.append(repr(rc.server_name))
            text.append(" ")
        users = "?" if rc.users is None else str(rc.users)
        text.append(f"{rc.agent}, {users} online, TLS {'on' if rc.tls else 'off'}")
        if rc.fingerprint:
            text.append(f", key {rc.fingerprint}")
    elif p.http is not None:
        h = p.http
        text.append(f"{h.status}")
        if h.reason:
            text.append(f" {h.reason}")
        if h.server:
            text.append("  server: ", style="dim")
            text.append(h.server)
        if h.title:
            text.append("  title: ", style="dim")
            text.append(h.title)
    elif p.banner:
        text.append(p.banner)
    if p.tls is not None and p.richchat is None:
        t = p.tls
        if text:
            text.append("  ")
        text.append(t.version.replace("TLSv", "TLS "))
        if t.subject:
            text.append("  subject: ", style="dim")
            text.append(t.subject)
        if t.fingerprint:
            text.append("  key: ", style="dim")
            text.append(t.fingerprint)
    return text


def report_renderable(report: ScanReport) -> RenderableType:
    title = Text(f"{report.method} scan of {report.host}")
    if report.address != report.host:
        title.append(f" ({report.address})")
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("port", justify="right", style="bold")
    table.add_column("state")
    table.add_column("service")
    table.add_column("details", overflow="fold")
    for p in report.open:
        table.add_row(
            f"{p.port}/tcp",
            Text("open", style="green"),
            Text(p.service or "unknown", style="bold green" if p.joinable else ""),
            _details(p),
        )
    shown_filtered = report.filtered if len(report.filtered) <= 20 else []
    for port in shown_filtered:
        table.add_row(f"{port}/tcp", Text("filtered", style="yellow"), "", "")
    summary = Text()
    of = ""
    if report.ports_requested is not None and report.ports_requested != report.ports_scanned:
        of = f" of {report.ports_requested}"
    counted = report.ports_requested if of else report.ports_scanned
    noun = "port" if counted == 1 else "ports"
    summary.append(f"{report.ports_scanned}{of} {noun} in {report.duration_s:.2f} s: ")
    summary.append(f"{len(report.open)} open", style="green")
    summary.append(f", {report.closed} closed, {len(report.filtered)} filtered")
    joinable = report.joinable
    if joinable:
        summary.append(f"; {len(joinable)} joinable richchat server(s)", style="bold green")
    if report.interrupted:
        summary.append("  (interrupted: partial results)", style="bold yellow")
    parts: list[RenderableType] = [table] if report.open or shown_filtered else []
    parts.append(summary)
    for p in joinable:
        tls = " --tls" if p.richchat is not None and p.richchat.tls else ""
        parts.append(Text(f"  join it: richchat join {_join_host(report)}:{p.port}{tls}",
                          style="dim"))
    return Group(*parts)


def _join_host(report: ScanReport) -> str:
    return f"[{report.address}]" if report.family == "ipv6" else report.address


class ProgressBar:
    """Ports done, open found, rate; on stderr, only when stderr is a terminal."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressBar:
        if self.console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[open]} open"),
                TextColumn("{task.fields[rate]:>8.0f} ports/s"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("scanning", total=self.total, open=0, rate=0.0)
        return self

    def update(self, p: ScanProgress) -> None:
        if self._progress is None or self._task is None:
            return
        if p.phase == "probe":
            self._progress.update(self._task, description="probing", open=p.open)
        else:
            self._progress.update(
                self._task, completed=p.done, total=p.total, open=p.open, rate=p.rate
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
