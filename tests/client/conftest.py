"""Fixtures: real richchat servers."""

from tests.client.servers import chat_server, server_process

__all__ = ["chat_server", "server_process"]
