"""Who is calling: an API token, a login session cookie, a trusted proxy's identity header, or the
single local user of a loopback-bound server, resolved into an :class:`ops.caller.Caller` (the
credential is recorded in ``Caller.credential``). Nothing here decides what a caller may do (the
operations check :mod:`ops.policy`); an unknown or bad credential is an error, never a fallback to
anonymous.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
import threading
import time
from pathlib import Path

from sqlmodel import Session

from ops.caller import Caller, local_caller
from store.users import create_user, get_user, get_user_by_name, resolve_token

SESSION_COOKIE = "labelwright_session"
TAILSCALE_LOGIN = "tailscale-user-login"
TAILSCALE_NAME = "tailscale-user-name"
# A request carrying any of these came through a proxy (Tailscale Serve forwards to 127.0.0.1):
# it is never the local user, whatever the peer address says.
PROXY_HEADERS = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    TAILSCALE_LOGIN,
    "tailscale-funnel-request",
)


class BadCredentials(Exception):
    """A credential was presented and is wrong (revoked token, forged cookie): answer 401."""


def load_secret(configured: str | None, home: Path) -> bytes:
    """The key that signs session cookies: configured, or made once and kept in ``home/session.key``."""
    if configured:
        return configured.encode()
    path = home / "session.key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


class SessionSigner:
    """``<user id>.<issued unix time>.<HMAC-SHA256>`` cookies; expiry is checked on every read."""

    def __init__(self, secret: bytes, max_age_s: int) -> None:
        self._secret = secret
        self.max_age_s = max_age_s

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, user_id: int, now: float | None = None) -> str:
        payload = f"{user_id}.{int(now if now is not None else time.time())}"
        return f"{payload}.{self._mac(payload)}"

    def verify(self, cookie: str, now: float | None = None) -> int:
        """The user id in a valid, unexpired cookie; ``BadCredentials`` otherwise."""
        parts = cookie.split(".")
        if len(parts) != 3 or not hmac.compare_digest(self._mac(f"{parts[0]}.{parts[1]}"), parts[2]):
            raise BadCredentials("invalid session cookie; log in again")
        user_id, issued = int(parts[0]), int(parts[1])
        if (now if now is not None else time.time()) - issued > self.max_age_s:
            raise BadCredentials("session expired; log in again")
        return user_id


def peer_is_trusted(peer: str | None, trusted: list[str]) -> bool:
    if not peer or not trusted:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in trusted)


def peer_is_loopback(peer: str | None) -> bool:
    try:
        return peer is not None and ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


def identify(
    session: Session,
    *,
    headers: dict[str, str],
    cookie: str | None,
    peer: str | None,
    signer: SessionSigner,
    trusted_proxies: list[str],
    local: bool,
) -> Caller | None:
    """The caller (``via="api"``), or None when anonymous. ``headers`` keys are lowercase.

    Order: bearer token, session cookie, Tailscale header from a trusted proxy, local user (only
    for a loopback peer, and never for a proxied request: even when the server was started on a
    network address by mistake, a remote caller is not the local user). A
    Tailscale login seen for the first time becomes a user without password or roles (default
    deny: an admin grants roles by that name).
    """
    authorization = headers.get("authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise BadCredentials("Authorization must be 'Bearer <token>'")
        user = resolve_token(session, token=token.strip())
        if user is None:
            raise BadCredentials("unknown or revoked API token")
        return Caller(user.username, user.id, user.is_admin, via="api", credential="token")
    if cookie:
        user = get_user(session, user_id=signer.verify(cookie))
        if user is None:
            raise BadCredentials("the user of this session no longer exists; log in again")
        return Caller(user.username, user.id, user.is_admin, via="api", credential="session")
    login = headers.get(TAILSCALE_LOGIN, "").strip()
    if login and peer_is_trusted(peer, trusted_proxies):
        user = get_user_by_name(session, username=login) or create_user(
            session, username=login, display_name=headers.get(TAILSCALE_NAME, "").strip()
        )
        return Caller(user.username, user.id, user.is_admin, via="api", credential="tailscale")
    if local and peer_is_loopback(peer) and not any(h in headers for h in PROXY_HEADERS):
        return local_caller(via="api")
    return None


class LoginThrottle:
    """At most ``max_failures`` wrong passwords per (peer, user name) in ``window_s``, in memory.

    Argon2 makes each guess slow already; this caps how many a client gets at all.
    """

    def __init__(self, max_failures: int = 10, window_s: float = 900.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def retry_after(self, key: tuple[str, str], now: float | None = None) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(key, now)
            return self.window_s - (now - times[0]) if len(times) >= self.max_failures else 0.0

    def failed(self, key: tuple[str, str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._failures[key] = [*self._recent(key, now), now]

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)
