"""Who is asking, and through what: the identity every operation receives.

A caller is resolved once per request (API token, login cookie, trusted proxy header) or per
process (the CLI's local user). The loopback single-user mode is the explicit :data:`LOCAL`
identity, never an absence of one. ``via`` and ``agent_run_id`` record the means: history says
"alice, through the agent (run 12)", not "agent".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

LOCAL_USER = "local"
VIAS = ("api", "ui", "agent", "cli", "job", "mcp")


@dataclass(frozen=True)
class Caller:
    """An identified person. ``user_id`` is None only for the local user of a loopback server."""

    username: str
    user_id: int | None
    is_admin: bool
    via: str = "api"
    credential: str = ""  # token | session | tailscale | local
    agent_run_id: int | None = None

    def __post_init__(self) -> None:
        if self.via not in VIAS:
            raise ValueError(f"via must be one of {list(VIAS)}, got {self.via!r}")
        if not self.username:
            raise ValueError("a caller needs a user name, got ''")

    def through(self, via: str, agent_run_id: int | None = None) -> Caller:
        """The same person acting through another surface (e.g. the agent, in run 12)."""
        return dataclasses.replace(self, via=via, agent_run_id=agent_run_id)


def local_caller(via: str = "cli") -> Caller:
    """The single local user: the person at this machine (CLI, loopback server without login).

    Instance admin, because whoever can run the CLI can read the data home anyway.
    """
    return Caller(LOCAL_USER, None, True, via=via, credential="local")
