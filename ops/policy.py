"""The permission policy: one table naming the least a caller needs for each operation.

Roles per project rank viewer < annotator < reviewer < admin; an instance admin is admin in every
project. Default deny: an operation missing from :data:`POLICY` cannot be authorized (``authorize``
raises ``KeyError`` at once, and the permission-matrix test fails on it). In words:

- a viewer reads (images, annotations, classes, jobs, history, findings, exports, events) and may
  chat with the agent, whose tools are held to the same table;
- an annotator also creates, edits, relabels and deletes annotations, asks a model for a
  proposal (a mask from a click: it costs model time, so it needs what storing it needs), creates
  classes, starts and cancels labeling jobs, and undoes its own changes;
- a reviewer also accepts and rejects, renames, merges and deletes classes, runs audits, closes
  findings, and undoes or redoes the project's newest change, whoever made it;
- an admin also renames or deletes the project, adds images and manages its members;
- creating a project needs an instance admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import Session

from ops.caller import Caller
from ops.errors import Forbidden, NotFound, Unauthenticated
from store.models import Project, Role
from store.users import get_role

RANK = {Role.viewer: 0, Role.annotator: 1, Role.reviewer: 2, Role.admin: 3}


class Rule(StrEnum):
    authenticated = "authenticated"
    instance_admin = "instance_admin"
    viewer = "viewer"
    annotator = "annotator"
    reviewer = "reviewer"
    admin = "admin"


POLICY: dict[str, Rule] = {
    "project.list": Rule.authenticated,
    "project.create": Rule.instance_admin,
    "project.read": Rule.viewer,
    "project.rename": Rule.admin,
    "project.delete": Rule.admin,
    "member.list": Rule.admin,
    "member.set": Rule.admin,
    "member.remove": Rule.admin,
    "image.read": Rule.viewer,
    "image.ingest": Rule.admin,
    "category.read": Rule.viewer,
    "category.create": Rule.annotator,
    "category.rename": Rule.reviewer,
    "category.merge": Rule.reviewer,
    "category.delete": Rule.reviewer,
    "annotation.read": Rule.viewer,
    "annotation.create": Rule.annotator,
    "annotation.edit": Rule.annotator,
    "annotation.delete": Rule.annotator,
    "annotation.propose": Rule.annotator,  # a model pass (segment a click) without storing: model time
    "annotation.review": Rule.reviewer,  # accept, reject, or set back to proposed
    "annotation.import": Rule.annotator,
    "job.read": Rule.viewer,
    "job.start": Rule.annotator,
    "job.cancel": Rule.annotator,
    "history.read": Rule.viewer,
    "history.undo_own": Rule.annotator,
    "history.undo": Rule.reviewer,  # the project's newest change, whoever made it; and redo
    "finding.read": Rule.viewer,
    "finding.close": Rule.reviewer,
    "audit.run": Rule.reviewer,
    "export.read": Rule.viewer,
    "agent.chat": Rule.viewer,
    "calibration.read": Rule.viewer,
    "calibration.apply": Rule.reviewer,  # accepts and rejects by threshold, like annotation.review
    "review_order.read": Rule.viewer,
    "model.train": Rule.reviewer,  # trains on accepted labels and registers a project detector
}


@dataclass(frozen=True)
class Access:
    """A caller let into a project, with the role they have there."""

    caller: Caller
    project_id: int
    role: Role

    def allows(self, op: str) -> bool:
        rule = POLICY[op]
        if rule is Rule.instance_admin:
            return self.caller.is_admin
        if rule is Rule.authenticated:
            return True
        return RANK[self.role] >= RANK[Role(rule.value)]

    def require(self, op: str, what: str | None = None) -> None:
        """Refuse unless the caller's role allows ``op`` (checks that depend on the input:
        creating an annotation as accepted needs what accepting needs)."""
        if not self.allows(op):
            raise Forbidden(
                f"{what or op} needs the {POLICY[op].value} role in project {self.project_id}; "
                f"you ({self.caller.username}) are {self.role.value}"
            )


def signed_in(caller: Caller | None) -> Caller:
    if caller is None:
        raise Unauthenticated("authentication required: log in, or send 'Authorization: Bearer <token>'")
    return caller


def role_of(session: Session, caller: Caller, project_id: int) -> Role | None:
    if caller.is_admin:
        return Role.admin
    return get_role(session, user_id=caller.user_id, project_id=project_id) if caller.user_id else None


def authorize_global(caller: Caller | None, op: str) -> Caller:
    """For operations outside a project (list or create projects)."""
    rule = POLICY[op]
    who = signed_in(caller)
    if rule is Rule.instance_admin and not who.is_admin:
        raise Forbidden(f"{op} needs an instance admin; you ({who.username}) are not one")
    return who


def authorize(session: Session, caller: Caller | None, op: str, project_id: int) -> Access:
    """The caller's access to ``project_id`` if it allows ``op``; refuses otherwise.

    Non-members are refused before the project's existence is checked, so a refusal never tells
    an outsider which project ids exist.
    """
    rule = POLICY[op]  # KeyError: an operation without a rule is never allowed
    who = signed_in(caller)
    role = role_of(session, who, project_id)
    if role is None:
        raise Forbidden(
            f"{op} needs the {rule.value} role in project {project_id}; you ({who.username}) are not a member"
        )
    if session.get(Project, project_id) is None:
        raise NotFound(f"no project with id {project_id}")
    access = Access(who, project_id, role)
    access.require(op)
    return access
