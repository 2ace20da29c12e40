"""Login sessions and API tokens: about the caller's own identity, not a project's data, so these
routes take the caller (signed in: :func:`ops.policy.signed_in`) and use the user store directly."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, Field
from sqlmodel import select

from ops.errors import Conflict, NotFound
from ops.policy import signed_in
from server.auth import SESSION_COOKIE
from server.deps import PUBLIC, CallerDep, SessionDep
from store.models import ApiToken, Membership
from store.users import authenticate, create_token, list_tokens, revoke_token

router = APIRouter(prefix="/auth", tags=["auth"])


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class TokenCreate(BaseModel):
    name: str = Field("", max_length=200, description="What the token is for, e.g. 'laptop script'.")


def token_public(row: ApiToken) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "created_at": row.created_at, "revoked_at": row.revoked_at}


@router.post("/login", dependencies=[Depends(PUBLIC)])
def login(body: Login, request: Request, response: Response, session: SessionDep) -> dict[str, Any]:
    """Check a password and set a signed session cookie (HttpOnly, SameSite=Strict)."""
    throttle = request.app.state.login_throttle
    key = (request.client.host if request.client else "", body.username.strip())
    wait = throttle.retry_after(key)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many wrong passwords for {key[1]!r}; try again in {wait:.0f} s",
            {"Retry-After": str(int(wait) + 1)},
        )
    user = authenticate(session, username=body.username, password=body.password)
    if user is None:
        throttle.failed(key)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    throttle.succeeded(key)
    signer = request.app.state.signer
    response.set_cookie(
        SESSION_COOKIE,
        signer.sign(user.id),  # type: ignore[arg-type]
        max_age=signer.max_age_s,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return {"username": user.username, "is_admin": user.is_admin}


@router.post("/logout", dependencies=[Depends(PUBLIC)])
def logout(response: Response) -> dict[str, str]:
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"status": "logged out"}


@router.get("/me")
def me(caller: CallerDep, session: SessionDep) -> dict[str, Any]:
    """Who you are, how you signed in (``via``: token, session, tailscale or local), and your role
    in each project."""
    user = signed_in(caller)
    roles: dict[int, str] = {}
    if user.user_id is not None:
        rows = session.exec(select(Membership).where(Membership.user_id == user.user_id))
        roles = {m.project_id: m.role.value if hasattr(m.role, "value") else str(m.role) for m in rows}
    return {"username": user.username, "is_admin": user.is_admin, "via": user.credential, "roles": roles}


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def new_token(body: TokenCreate, caller: CallerDep, session: SessionDep) -> dict[str, Any]:
    """Issue an API token for yourself; the plaintext is shown only in this answer."""
    user = signed_in(caller)
    if user.user_id is None:
        raise Conflict("the local user has no account; create one with `labelwright users add`")
    token, row = create_token(session, user_id=user.user_id, name=body.name)
    return {**token_public(row), "token": token}


@router.get("/tokens")
def tokens(caller: CallerDep, session: SessionDep) -> list[dict[str, Any]]:
    user = signed_in(caller)
    return [token_public(t) for t in list_tokens(session, user_id=user.user_id)] if user.user_id else []


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke(token_id: int, caller: CallerDep, session: SessionDep) -> Response:
    """Revoke one of your tokens (instance admins: anyone's)."""
    user = signed_in(caller)
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != user.user_id and not user.is_admin):
        raise NotFound(f"no token {token_id} of yours")
    if not revoke_token(session, token_id=token_id):
        raise Conflict(f"token {token_id} is revoked already")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
