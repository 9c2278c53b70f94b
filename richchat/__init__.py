"""richchat: a LAN chat toolkit."""

__version__ = "0.1.0"
