"""A guard that makes any network use fail loudly, for backends that must never download anything."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


class NetworkUsed(RuntimeError):
    """Something tried to open a socket or resolve a host name while the network was blocked."""


class _BlockedSocket(socket.socket):
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise NetworkUsed(f"socket.socket{args} opened while the network is blocked")


def _refuse(*args: object, **kwargs: object) -> None:
    raise NetworkUsed(f"network call with {args} while the network is blocked")


@contextmanager
def blocked_network() -> Iterator[None]:
    """Replace socket creation, connection and name resolution by functions that raise NetworkUsed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "socket", _BlockedSocket)
        patch.setattr(socket, "create_connection", _refuse)
        patch.setattr(socket, "getaddrinfo", _refuse)
        yield
