"""The REST API under /api/v1: one router per resource.

To add a resource (e.g. the agent chat at ``/projects/{project_id}/chat``), write
``server/routes/<name>.py`` with an ``APIRouter`` whose every route names one access rule from
``server.deps`` (``Viewer``, ``Annotator``, ``Reviewer``, ``ProjectAdmin``, ``CurrentUser``,
``InstanceAdmin`` or ``PUBLIC``), and add it to :data:`ROUTERS`. ``create_app`` refuses routes
without a rule, and tests/server/test_permissions.py checks each one against every role.
"""

from fastapi import APIRouter

from server.routes import (
    annotations,
    auth,
    categories,
    events,
    exports,
    findings,
    history,
    images,
    jobs,
    projects,
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
]
