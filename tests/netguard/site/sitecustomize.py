"""Installs the test network guard in every Python process the tests start.

``tests/netguard/plugin.py`` puts this directory on ``PYTHONPATH`` for the test run only. The
guard module is loaded by its file path, so this works whatever else is on ``sys.path``; a
``sitecustomize`` further down the path (the system's own) still runs afterwards.
"""

from __future__ import annotations


def _install() -> None:
    import importlib.util
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        "_richchat_test_netguard", os.path.join(os.path.dirname(here), "__init__.py")
    )
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.install_in_child()

    # chain to the next sitecustomize on the path, if the system has one
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    for entry in rest:
        candidate = os.path.join(entry or ".", "sitecustomize.py")
        if os.path.isfile(candidate):
            other = importlib.util.spec_from_file_location("_system_sitecustomize", candidate)
            if other is not None and other.loader is not None:
                other.loader.exec_module(importlib.util.module_from_spec(other))
            break


_install()
