"""Interpreter tuning for short-lived commands (``send``, ``scan``, ``discover``).

Both settings are for a process that runs one command and exits; the CLI applies them to
those commands in one place (:func:`short_lived`, used in ``richchat/cli.py``). Long-running
processes (``server``, the ``join`` chat UI) keep the interpreter's defaults.
"""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: the standard outputs this process was started without (``>&-``): "stdout", "stderr"
#: (the CLI points them at the null device; ``get -o -`` refuses to write its file there)
CLOSED_OUTPUTS: set[str] = set()

#: pydantic reads this before it looks for plugins (``pydantic.plugin._loader``)
_PLUGINS_VAR = "PYDANTIC_DISABLE_PLUGINS"


def skip_final_collection() -> None:
    """Nothing is left to collect before exit: freeze the heap so the interpreter's final full
    garbage collections skip every object pydantic, rich and requests created (0.15-0.4 s of
    CPU at exit in ``scan`` and ``discover``, about 90 ms in ``send``; docs/performance.md)."""
    gc.freeze()


def short_lived(command: F) -> F:
    """Wrap a CLI command whose process ends when it returns.

    * Looking for pydantic plugins reads the metadata of every installed distribution the
      first time a validator is built (10-30 ms with 130 distributions): richchat's frames
      and reports are validated the same without plugins, so the command runs with
      ``PYDANTIC_DISABLE_PLUGINS=1`` unless the variable is set already (set it to an empty
      string to have plugins). Typer does the same while it builds its option validators.
    * When the command ends, however it ends, :func:`skip_final_collection`.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        previous = os.environ.get(_PLUGINS_VAR)
        if previous is None:
            os.environ[_PLUGINS_VAR] = "1"
        try:
            return command(*args, **kwargs)
        finally:
            if previous is None:
                os.environ.pop(_PLUGINS_VAR, None)
            skip_final_collection()

    return run  # type: ignore[return-value]
