from __future__ import annotations

import hashlib

import pytest
from sqlmodel import Session, select

from store.models import ApiToken, Project, Role
from store.projects import create_project
from store.users import (
    authenticate,
    create_token,
    create_user,
    get_role,
    list_tokens,
    remove_membership,
    resolve_token,
    revoke_token,
    set_membership,
)


def test_password_is_hashed_with_argon2_and_authenticates(session: Session) -> None:
    user = create_user(session, username="alice", password="correct horse")
    assert user.password_hash.startswith("$argon2id$") and "correct horse" not in user.password_hash
    assert authenticate(session, username="alice", password="correct horse") == user
    assert authenticate(session, username="alice", password="wrong password") is None
    assert authenticate(session, username="nobody", password="correct horse") is None


def test_user_without_password_cannot_log_in(session: Session) -> None:
    create_user(session, username="svc")
    assert authenticate(session, username="svc", password="") is None
    assert authenticate(session, username="svc", password="labelwright-no-such-user") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"username": " "}, "username must be a non-empty"),
        ({"password": "short"}, "at least 8 characters, got 5"),
        ({"username": "alice"}, "a user named 'alice' already exists"),
    ],
)
def test_bad_users_are_refused(session: Session, kwargs: dict, message: str) -> None:
    create_user(session, username="alice", password="correct horse")
    with pytest.raises(ValueError, match=message):
        create_user(session, **({"username": "bob", "password": "long enough"} | kwargs))


def test_tokens_store_only_a_hash_and_can_be_revoked(session: Session) -> None:
    user = create_user(session, username="alice")
    token, row = create_token(session, user_id=user.id, name="laptop")
    assert token.startswith("lw_") and len(token) > 40
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {r.token_hash for r in session.exec(select(ApiToken))}
    assert resolve_token(session, token=token) == user
    assert resolve_token(session, token=token + "x") is None
    assert [t.name for t in list_tokens(session, user_id=user.id)] == ["laptop"]
    assert revoke_token(session, token_id=row.id) is True
    assert resolve_token(session, token=token) is None
    assert revoke_token(session, token_id=row.id) is False
    with pytest.raises(ValueError, match="no user with id 999"):
        create_token(session, user_id=999)


def test_roles_per_project(session: Session, project: Project) -> None:
    other = create_project(session, name="other")
    alice = create_user(session, username="alice")
    root = create_user(session, username="root", is_admin=True)
    assert get_role(session, user_id=alice.id, project_id=project.id) is None  # default deny
    set_membership(session, user_id=alice.id, project_id=project.id, role="annotator")
    assert get_role(session, user_id=alice.id, project_id=project.id) == Role.annotator
    set_membership(session, user_id=alice.id, project_id=project.id, role=Role.reviewer)
    assert get_role(session, user_id=alice.id, project_id=project.id) == Role.reviewer
    assert get_role(session, user_id=alice.id, project_id=other.id) is None
    assert get_role(session, user_id=root.id, project_id=other.id) == Role.admin
    assert get_role(session, user_id=999, project_id=project.id) is None
    with pytest.raises(ValueError, match="role must be one of .* got 'owner'"):
        set_membership(session, user_id=alice.id, project_id=project.id, role="owner")
    assert remove_membership(session, user_id=alice.id, project_id=project.id) is True
    assert get_role(session, user_id=alice.id, project_id=project.id) is None
    assert remove_membership(session, user_id=alice.id, project_id=project.id) is False
