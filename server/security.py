"""Request guards that run before any route: the Host check and the cross-site write refusal.

A server on 127.0.0.1 without login is reachable by any web page the local user opens: a page on
``evil.example`` can rebind its DNS name to 127.0.0.1 and read our answers (stopped by accepting
only known Host names), or post a form to us (stopped by refusing writes whose ``Origin`` or
``Sec-Fetch-Site`` says they come from another site). Both answer before routing, as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException

from server.settings import LOOPBACK_NAMES, Settings, is_loopback

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SAME_SITE_FETCH = frozenset({"same-origin", "none"})  # "same-site" is another port: still refused


def host_name(host_header: str) -> str:
    """``Host`` without its port, lowercase; IPv6 keeps no brackets (``[::1]:8000`` -> ``::1``)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostPolicy:
    """Which Host names the server answers to."""

    def __init__(self, settings: Settings) -> None:
        extra = {host_name(h) for h in settings.allowed_hosts}
        self.any_host = not is_loopback(settings.host) and not extra
        bound = {host_name(settings.host)} if settings.host not in ("0.0.0.0", "::") else set()
        self.names = frozenset(LOOPBACK_NAMES) | extra | bound

    def allows(self, host_header: str | None) -> bool:
        if self.any_host:
            return True
        return host_header is not None and host_name(host_header) in self.names


def cross_site_reason(
    method: str, headers: dict[str, str], own_names: frozenset[str] = frozenset()
) -> str | None:
    """Why a write is refused as cross-site, or None. Reads and header-less clients pass.

    An ``Origin`` passes when it names the Host the request was sent to, or one of ``own_names``
    (the configured allowed_hosts: our name behind a proxy that rewrites Host).
    """
    if method not in UNSAFE_METHODS:
        return None
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in SAME_SITE_FETCH:
        return f"cross-site write refused (Sec-Fetch-Site: {fetch_site})"
    origin = headers.get("origin")
    if origin is not None:
        netloc = urlsplit(origin).netloc.lower() if origin != "null" else "null"
        if netloc != headers.get("host", "").lower() and host_name(netloc) not in own_names:
            return f"cross-site write refused: Origin {origin!r} does not match Host {headers.get('host')!r}"
    return None


class GuardMiddleware:
    """Pure ASGI middleware (streams such as Server-Sent Events pass through untouched)."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.hosts = HostPolicy(settings)
        self.own_names = frozenset(host_name(h) for h in settings.allowed_hosts)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope["headers"])
        if scope["type"] == "websocket":
            same_site = cross_site_reason("POST", headers, self.own_names) is None  # a socket can write
            if not (self.hosts.allows(headers.get("host")) and same_site):
                await send({"type": "websocket.close", "code": 1008})
                return
        elif not self.hosts.allows(headers.get("host")):
            await _refuse(send, 400, f"unknown Host {headers.get('host')!r}; add it to allowed_hosts")
            return
        elif (reason := cross_site_reason(scope.get("method", "GET"), headers, self.own_names)) is not None:
            await _refuse(send, 403, reason)
            return
        await self.app(scope, receive, send)


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}


async def _refuse(
    send: Any, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += extra or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


DEFAULT_BODY_LIMIT = 4 * 1024**2  # JSON bodies: a few thousand annotations' worth
BULK_BODY_LIMIT = 64 * 1024**2  # bulk annotation routes: 100,000 ids, or many masks at once


class BodyTooLarge(HTTPException):
    """The request body passed its route's limit while it was being read (an HTTPException, so
    the body parser passes it on and the app answers 413)."""

    def __init__(self, cap: int) -> None:
        super().__init__(413, _too_large(cap, f"over {cap:,} bytes sent"))


class BodyLimitMiddleware:
    """Cap request bodies by route, counting bytes as they arrive (a declared Content-Length over the
    cap is refused before reading; a chunked body is cut off at the cap). Both answer 413 naming
    the limit.

    ``limits`` pairs a path pattern with its cap, first match wins; None exempts the route (image
    uploads stream to disk under their own ``max_upload_bytes``). Paths outside ``prefix`` (the
    mounted UI, with its own file uploads) are not capped here.
    """

    def __init__(
        self, app: Any, prefix: str, limits: list[tuple[str, int | None]], default: int = DEFAULT_BODY_LIMIT
    ) -> None:
        import re

        self.app = app
        self.prefix = prefix
        self.limits = [(re.compile(pattern), cap) for pattern, cap in limits]
        self.default = default

    def limit_for(self, path: str) -> int | None:
        if not path.startswith(self.prefix):
            return None
        for pattern, cap in self.limits:
            if pattern.fullmatch(path):
                return cap
        return self.default

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.limit_for(scope.get("path", ""))
        if cap is None:
            await self.app(scope, receive, send)
            return
        declared = _headers(scope["headers"]).get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            await _refuse(send, 413, _too_large(cap, f"{int(declared):,} bytes declared"))
            return
        seen = 0

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise BodyTooLarge(cap)
            return message

        await self.app(scope, counted, send)


def _too_large(cap: int, got: str) -> str:
    return f"request body too large: the limit of this route is {cap:,} bytes, got {got}"


NEVER_ALLOWED = frozenset({"TRACE", "CONNECT"})


class MethodMiddleware:
    """405 with ``Allow`` for a method no API route at the path accepts, and for TRACE and CONNECT
    anywhere. Without it a UI mounted at / would take such requests and answer 404.

    ``routes`` returns the API's routes (objects with a full ``path`` and ``methods``), read on the
    first request, once the app has all its routes.
    """

    def __init__(self, app: Any, prefix: str, routes: Any) -> None:
        self.app = app
        self.prefix = prefix
        self.routes = routes
        self._compiled: list[tuple[Any, frozenset[str]]] | None = None

    def allowed(self, path: str) -> set[str]:
        if self._compiled is None:
            from starlette.routing import compile_path

            self._compiled = [(compile_path(r.path)[0], frozenset(r.methods)) for r in self.routes()]
        methods: set[str] = set()
        for regex, route_methods in self._compiled:
            if regex.fullmatch(path):
                methods |= route_methods
        return methods

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            method, path = scope.get("method", "GET"), scope.get("path", "")
            if method in NEVER_ALLOWED or path.startswith(self.prefix):
                allowed = self.allowed(path)
                if "GET" in allowed:
                    allowed.add("HEAD")
                if method in NEVER_ALLOWED or (allowed and method not in allowed):
                    await _refuse(
                        send,
                        405,
                        f"method {method} not allowed here; allowed: {', '.join(sorted(allowed)) or 'none'}",
                        [(b"allow", ", ".join(sorted(allowed)).encode())],
                    )
                    return
        await self.app(scope, receive, send)
