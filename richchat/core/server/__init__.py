"""The chat server: hub (rooms, names, fan-out), connections, history storage."""

from richchat.core.constants import DEFAULT_BEACON_PORT, DEFAULT_PORT
from richchat.core.server.app import ChatServer
from richchat.core.server.config import ServerConfig

__all__ = ["DEFAULT_BEACON_PORT", "DEFAULT_PORT", "ChatServer", "ServerConfig"]
