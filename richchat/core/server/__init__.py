"""The chat server: hub (rooms, names, fan-out), connections, history storage."""

from richchat.core.server.app import ChatServer
from richchat.core.server.config import DEFAULT_BEACON_PORT, DEFAULT_PORT, ServerConfig

__all__ = ["DEFAULT_BEACON_PORT", "DEFAULT_PORT", "ChatServer", "ServerConfig"]
