"""The FastAPI application: wires settings, the store and (later) the API routes and the UI."""

from __future__ import annotations

import html

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from sqlmodel import func, select

from server.settings import Settings
from store.db import new_session, open_engine
from store.models import Image, Project


def create_app(settings: Settings) -> FastAPI:
    engine = open_engine(settings.db_path)
    app = FastAPI(title="labelwright", version="0.1.0")
    app.state.settings = settings
    app.state.engine = engine

    @app.get("/api/v1/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "stack": settings.stack}

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        with new_session(engine) as session:
            projects = session.exec(select(Project).order_by(Project.name)).all()
            rows = []
            for p in projects:
                n = session.exec(select(func.count()).where(Image.project_id == p.id)).one()
                rows.append(f"<li>{html.escape(p.name)}: {n} images</li>")
        hint = "<li>No projects yet: <code>labelwright ingest photos.zip --project NAME</code></li>"
        listing = "".join(rows) or hint
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>labelwright</title></head>"
            f"<body><h1>labelwright</h1><p>Model stack: {html.escape(settings.stack)}</p>"
            f"<ul>{listing}</ul></body></html>"
        )

    return app
