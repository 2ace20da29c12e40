"""The store's error types; bad input is a plain ``ValueError``, "not found" is ``None``."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's own errors."""


class StaleWriteError(StoreError):
    """A write named a version of an annotation that someone else has changed since.

    The caller (a person in the UI, or the agent) must re-read and decide; nothing was written.
    """

    def __init__(
        self,
        *,
        annotation_id: int,
        expected_version: int | None,
        actual_version: int | None,
        changed_by: str = "",
        action: str = "write",
    ) -> None:
        self.annotation_id = annotation_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        self.changed_by = changed_by
        expected = "absent" if expected_version is None else f"version {expected_version}"
        actual = "deleted" if actual_version is None else f"version {actual_version}"
        who = f" (last changed by {changed_by!r})" if changed_by else ""
        super().__init__(
            f"cannot {action} annotation {annotation_id}: expected {expected}, it is now {actual}{who}; "
            "reload it and try again"
        )


class NameTaken(StoreError, ValueError):
    """A name that must be unique (project, class, user) is taken: the caller's input clashes with
    the current state (a conflict, not malformed input)."""
