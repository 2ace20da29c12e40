"""The REST API under /api/v1: one router per resource.

To add a resource (e.g. the agent chat at ``/projects/{project_id}/chat``), write
``server/routes/<name>.py`` with an ``APIRouter`` whose every route takes ``CallerDep`` and
``EnvDep`` from ``server.deps`` and calls one operation of ``ops/`` (which checks the policy), or
is ``PUBLIC``; add it to :data:`ROUTERS`. ``create_app`` refuses a route that is neither, and
tests/server/test_permissions.py maps each route to its operation (``ROUTE_OPS``) and checks it
against every role.
"""

from fastapi import APIRouter

from server.routes import (
    annotations,
    auth,
    categories,
    chat,
    events,
    exports,
    findings,
    history,
    images,
    imports,
    jobs,
    projects,
    review_queue,
    segment,
    videos,
)

ROUTERS: list[APIRouter] = [
    auth.router,
    projects.router,
    images.router,
    categories.router,
    annotations.router,
    jobs.router,
    history.router,
    findings.router,
    exports.router,
    events.router,
    review_queue.router,
    chat.router,
    segment.router,
    videos.router,
    imports.router,
]
