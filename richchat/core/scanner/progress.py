"""What ``progress_callback`` receives while a scan runs (a plain dataclass: cheap to make)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Phase = Literal["sweep", "probe"]


@dataclass(frozen=True)
class ScanProgress:
    done: int  # ports answered so far (sweep), or open ports probed (probe)
    total: int  # ports to scan
    open: int  # open ports found so far
    rate: float  # ports per second so far
    phase: Phase = "sweep"
