"""What every upload route does before it reads a body: refuse one that says it is too large (or
does not say), and stage the files in a folder of their own under the data home's ``tmp/``, which
the route removes when it is done, whatever the outcome."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request, status


def refuse_oversized(request: Request) -> None:
    """411 without ``Content-Length``, 413 above the server's upload limit: before any byte is read."""
    limit = request.app.state.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared is None:
        raise HTTPException(status.HTTP_411_LENGTH_REQUIRED, "send Content-Length with an upload")
    if int(declared) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"upload of {int(declared):,} bytes > limit {limit:,}"
        )


def staging_dir(home: Path, prefix: str) -> Path:
    """A fresh folder for one upload's files, under ``<home>/tmp``."""
    parent = home / "tmp"
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def upload_schema(field: str, many: bool = False) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that reads multipart field ``field`` itself (one file, or
    ``many``): FastAPI cannot see a body the route parses from the request."""
    binary = {"type": "string", "format": "binary"}
    schema = {
        "type": "object",
        "properties": {field: {"type": "array", "items": binary} if many else binary},
        "required": [field],
    }
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}
