"""Fixtures: real richchat servers."""

from tests.client.servers import chat_server, hostile_server, server_process

__all__ = ["chat_server", "hostile_server", "server_process"]
