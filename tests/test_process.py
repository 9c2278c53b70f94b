"""Interpreter tuning of short-lived commands (``richchat.core.process.short_lived``)."""

from __future__ import annotations

import gc
import inspect
import os
from collections.abc import Iterator

import pytest

from richchat.core.process import short_lived


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the test process goes on: give the frozen objects back to the collector


def command(name: str, count: int = 1) -> tuple[str | None, int]:
    """A command."""
    return os.environ.get("PYDANTIC_DISABLE_PLUGINS"), gc.get_freeze_count()


def test_runs_without_pydantic_plugins_then_freezes_the_heap(
    unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYDANTIC_DISABLE_PLUGINS", raising=False)
    wrapped = short_lived(command)
    assert wrapped("x") == ("1", 0)  # plugins off while it runs, nothing frozen yet
    assert "PYDANTIC_DISABLE_PLUGINS" not in os.environ
    assert gc.get_freeze_count() > 0
    # Typer reads the options from the signature and the help from the docstring
    assert inspect.signature(wrapped) == inspect.signature(command)
    assert wrapped.__doc__ == "A command."


def test_a_setting_of_the_user_is_kept(unfrozen: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "")  # '' = load plugins
    assert short_lived(command)("x")[0] == ""
    assert os.environ["PYDANTIC_DISABLE_PLUGINS"] == ""


def test_freezes_when_the_command_fails(unfrozen: None) -> None:
    def failing() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        short_lived(failing)()
    assert gc.get_freeze_count() > 0
