"""pytest plugin: in CI a skip is a failure unless tests/allowed_skips.py lists it.

CI mode is ``RICHCHAT_CI=1`` (set by ``.ci/run``) or ``RICHCHAT_REQUIRE_NETNS=1``. Outside CI
nothing changes: a laptop without tmux or root still runs what it can, and ``-rs`` says what
was skipped and why.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

from tests.allowed_skips import allowed_reason

CI_ENV = "RICHCHAT_CI"
REQUIRE_NETNS_ENV = "RICHCHAT_REQUIRE_NETNS"


def ci_mode() -> bool:
    return os.environ.get(CI_ENV) == "1" or os.environ.get(REQUIRE_NETNS_ENV) == "1"


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _refuse(nodeid: str, reason: str) -> str:
    return (f"skipped in CI: {reason}\n(CI allows a skip only when tests/allowed_skips.py "
            f"lists {nodeid!r} with its reason; install what is missing instead)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and ci_mode():
        reason = _reason(report)
        allowed = allowed_reason(item.nodeid)
        if allowed is None:
            report.outcome = "failed"
            report.longrepr = _refuse(item.nodeid, reason)
        elif isinstance(report.longrepr, tuple):
            path, line, _ = report.longrepr
            report.longrepr = (path, line, f"{reason} [allowed in CI: {allowed}]")
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if report.skipped and ci_mode() and allowed_reason(report.nodeid) is None:
        report.outcome = "failed"
        report.longrepr = _refuse(report.nodeid, _reason(report))
    return report
