"""What every route shares in its OpenAPI contract: bounded ids and counts, and the error answers.

Bounds: an id, offset or count a client sends is an integer in ``0..MAX_INT`` (2**31 - 1,
PostgreSQL's INTEGER; SQLite's is 64-bit), so a value the database cannot store is a 422 from the
request model, never an ``OverflowError`` or a driver error deep in a query.

Errors: every refusal is ``{"detail": "<one sentence>"}`` (:class:`ErrorBody`), whoever refuses
(an operation's :mod:`ops.errors`, a request model, the Host and body-size guards). :func:`errors`
builds the ``responses=`` map a router declares, one entry per status with an example, from the
refusals that can happen there.
"""

from __future__ import annotations

from typing import Annotated, Any

import annotated_types as at
from pydantic import BaseModel, Field, FiniteFloat

from ops.errors import STATUS
from server.deps import MAX_INT, Id

__all__ = ["MAX_INT", "Box", "ErrorBody", "Id", "Name", "Points", "StaleBody", "Text", "errors"]

# Names and labels: the operation checks each kind's own rules (ops.names) and says which; this
# bound only keeps a hostile string from costing anything before that.
Name = Annotated[str, at.MaxLen(1000)]
Text = Annotated[str, at.MaxLen(20_000)]  # a description (ops.names.description allows 10,000)
Box = Annotated[list[FiniteFloat], at.Len(4, 4)]  # [x, y, w, h]; NaN and infinities are refused
Points = list[Annotated[list[FiniteFloat], at.MinLen(2)]]


class ErrorBody(BaseModel):
    """Every error answer: one sentence for the person, naming what was expected and what came."""

    detail: str = Field(description="What went wrong, e.g. 'no project with id 7'.")


class StaleBody(ErrorBody):
    """409 for a write based on an old version: who changed the row, and its current version."""

    annotation_id: int | None = None
    current_version: int | None = None
    changed_by: str | None = None


EXAMPLES: dict[int, str] = {
    400: "unknown Host 'evil.example'; add it to allowed_hosts",
    401: "authentication required: log in, or send 'Authorization: Bearer <token>'",
    403: "annotation.create needs the annotator role in project 1; you (bob) are viewer",
    404: "no project with id 7",
    409: "a project named 'streets' already exists; pick another name or open it",
    411: "send Content-Length with an upload",
    413: "request body too large: the limit of this route is 4,194,304 bytes, got 5,000,000 bytes declared",
    422: "body.name: Field required",
    428: "send the version you read (body 'version' or If-Match)",
    429: "too many wrong passwords for 'alice'; try again in 30 s",
}
# Refusals that can come before any operation runs: the Host and cross-site guards (400, 403), the
# body-size cap (413) and request validation (422).
GUARDS = (400, 403, 413, 422)


def errors(*extra: int, caller: bool = True) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` map of a router: the guards' statuses, the operations' refusals
    (``ops.errors.STATUS``) when its routes take the caller, and ``extra`` ones."""
    codes = set(GUARDS) | set(extra)
    if caller:
        codes |= set(STATUS.values())
    out: dict[int | str, dict[str, Any]] = {}
    for code in sorted(codes):
        model = StaleBody if code == 409 else ErrorBody
        out[code] = {
            "model": model,
            "description": _DESCRIPTIONS.get(code, "Refused"),
            "content": {"application/json": {"example": {"detail": EXAMPLES[code]}}},
        }
    return out


_DESCRIPTIONS = {
    400: "Bad request (unknown Host, malformed header)",
    401: "No or bad credentials",
    403: "Your role does not allow this, or a cross-site write",
    404: "Not found (or not in this project)",
    409: "Conflicts with the current state (a name taken, a stale version)",
    411: "Content-Length required",
    413: "Over a size or complexity limit",
    422: "Invalid input",
    428: "The version you read is required",
    429: "Too many attempts",
}
