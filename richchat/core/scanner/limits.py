"""File-descriptor budget: raise RLIMIT_NOFILE's soft limit and size concurrency from it."""

from __future__ import annotations

RESERVED_FDS = 128  # for the interpreter, probes, pipes, the terminal
MAX_CONCURRENCY = 16384


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 512
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)


def concurrency_budget(requested: int | None = None) -> int:
    """How many connects may be in flight at once without running out of descriptors."""
    available = max(16, raise_nofile_limit() - RESERVED_FDS)
    budget = min(available, MAX_CONCURRENCY)
    if requested is not None:
        budget = min(budget, max(1, requested))
    return budget
