"""Users, API tokens and per-project roles.

Passwords are stored as argon2id hashes; tokens as the sha256 of a random secret shown once
(a token has 256 bits of entropy, so a fast hash is enough and lookup is an index probe).
"""

from __future__ import annotations

import hashlib
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from store.errors import NameTaken
from store.models import ApiToken, Membership, Role, User, utcnow

TOKEN_PREFIX = "lw_"
MIN_PASSWORD_LENGTH = 8
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Verified against when the user does not exist, so a wrong name costs as long as a wrong
    # password. Computed on first use: hashing is deliberately slow and `import store` must not be.
    return _hasher.hash("labelwright-no-such-user")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    session: Session,
    *,
    username: str,
    password: str | None = None,
    display_name: str = "",
    is_admin: bool = False,
) -> User:
    """Create a user; without a password they can only sign in by token or trusted proxy header."""
    username = username.strip()
    if not username:
        raise ValueError("username must be a non-empty string, got ''")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters, got {len(password)}")
    if get_user_by_name(session, username=username) is not None:
        raise NameTaken(f"a user named {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=_hasher.hash(password) if password is not None else "",
        is_admin=is_admin,
    )
    session.add(user)
    session.commit()
    return user


def get_user(session: Session, *, user_id: int) -> User | None:
    return session.get(User, user_id)


def get_user_by_name(session: Session, *, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username.strip())).first()


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    """The user when ``password`` is theirs, else None (same cost whether or not the user exists)."""
    user = get_user_by_name(session, username=username)
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.password_hash:
        return None
    if _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password)
        session.add(user)
        session.commit()
    return user


def create_token(session: Session, *, user_id: int, name: str = "") -> tuple[str, ApiToken]:
    """Issue an API token: returns the plaintext (shown once, never stored) and its row."""
    if session.get(User, user_id) is None:
        raise ValueError(f"no user with id {user_id}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user_id, name=name, token_hash=_token_hash(token))
    session.add(row)
    session.commit()
    return token, row


def resolve_token(session: Session, *, token: str) -> User | None:
    """The user a live (not revoked) token belongs to, else None."""
    row = session.exec(
        select(ApiToken).where(ApiToken.token_hash == _token_hash(token), col(ApiToken.revoked_at).is_(None))
    ).first()
    return session.get(User, row.user_id) if row is not None else None


def list_tokens(session: Session, *, user_id: int) -> list[ApiToken]:
    return list(session.exec(select(ApiToken).where(ApiToken.user_id == user_id).order_by(col(ApiToken.id))))


def revoke_token(session: Session, *, token_id: int) -> bool:
    """Revoke a token for good; False when there is no such token or it was revoked already."""
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    session.add(row)
    session.commit()
    return True


def set_membership(session: Session, *, user_id: int, project_id: int, role: Role | str) -> Membership:
    """Give a user a role in a project (replacing the role they had there)."""
    try:
        role = Role(role)
    except ValueError:
        raise ValueError(f"role must be one of {[r.value for r in Role]}, got {role!r}") from None
    membership = session.exec(
        select(Membership).where(Membership.user_id == user_id, Membership.project_id == project_id)
    ).first() or Membership(user_id=user_id, project_id=project_id, role=role)
    membership.role = role
    session.add(membership)
    session.flush()
    return membership


def remove_membership(session: Session, *, user_id: int, project_id: int) -> bool:
    membership = session.exec(
        select(Membership).where(Membership.user_id == user_id, Membership.project_id == project_id)
    ).first()
    if membership is None:
        return False
    session.delete(membership)
    session.flush()
    return True


def get_role(session: Session, *, user_id: int, project_id: int) -> Role | None:
    """The user's role in the project (instance admins are admin everywhere); None: no access."""
    user = session.get(User, user_id)
    if user is None:
        return None
    if user.is_admin:
        return Role.admin
    membership = session.exec(
        select(Membership).where(Membership.user_id == user_id, Membership.project_id == project_id)
    ).first()
    return Role(membership.role) if membership is not None else None
