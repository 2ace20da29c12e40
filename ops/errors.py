"""What an operation can refuse with. Each has one audience: the person who asked.

Surfaces translate them: the API to a status code (see ``STATUS``), the UI to a message, the agent
to a tool error the model reads and reports, the CLI to an error line and exit code 1. Anything
else raised from an operation is our bug. The store's ``StaleWriteError`` (a write named a version
someone changed since) passes through unchanged; it says who changed the row.
"""

from __future__ import annotations

from store.errors import StaleWriteError


class OpError(Exception):
    """Base of the refusals; the message is written for the person."""


class Unauthenticated(OpError):
    """No identity where one is needed (a network caller without credentials)."""


class Forbidden(OpError):
    """The caller's role does not allow the operation."""


class NotFound(OpError):
    """The project, image, annotation ... named does not exist (or not in this project)."""


class Conflict(OpError):
    """The request clashes with the current state: a name taken, a job already ended."""


class Invalid(OpError, ValueError):
    """Bad input: says what was expected and what came; nothing was written."""


class TooLarge(Invalid):
    """Input over a size limit (a body, a mask's run-length, a polygon's vertices)."""


STATUS: dict[type[Exception], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    StaleWriteError: 409,
    TooLarge: 413,
    Invalid: 422,
}


def status_of(exc: Exception) -> int:
    """The HTTP status for an operation's refusal (most specific class wins)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500
