"""A guard that makes any network use fail loudly, for backends that must never download anything.

Child processes are refused too: a ``pip install`` (what ultralytics does for a missing package)
would reach the network from a process our socket patch cannot see.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


class NetworkUsed(RuntimeError):
    """Something tried to open a socket, resolve a host name or start a process while blocked."""


class _BlockedSocket(socket.socket):
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise NetworkUsed(f"socket.socket{args} opened while the network is blocked")


def _refuse(*args: object, **kwargs: object) -> None:
    raise NetworkUsed(f"network call or child process with {args} while the network is blocked")


_blocked = False


class _BlockedPopen(subprocess.Popen):  # type: ignore[type-arg]
    """A class, not a function: a module first imported inside the block may subclass Popen at
    import time (ultralytics' training imports ray, whose ``ConsolePopen`` does). It refuses only
    while blocked, so such a subclass works again once the block ends."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        if _blocked:
            _refuse(*args, **kwargs)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


@contextmanager
def blocked_network() -> Iterator[None]:
    """Make socket creation, connection, name resolution and child processes raise NetworkUsed."""
    global _blocked
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "socket", _BlockedSocket)
        patch.setattr(socket, "create_connection", _refuse)
        patch.setattr(socket, "getaddrinfo", _refuse)
        patch.setattr(subprocess, "Popen", _BlockedPopen)
        _blocked = True
        try:
            yield
        finally:
            _blocked = False
