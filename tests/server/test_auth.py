"""Identity: login sessions, API tokens, Tailscale headers from trusted proxies only, the local
user of a loopback server, and the Host / cross-site guards that protect that local user."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from server.auth import SESSION_COOKIE, BadCredentials, LoginThrottle, SessionSigner
from server.security import cross_site_reason, host_name
from server.settings import Settings
from tests.server.conftest import PASSWORD, World, make_app

ME = "/api/v1/auth/me"
LOOPBACK = ("127.0.0.1", 50000)


def grant(client: TestClient, world: World, username: str, role: str) -> None:
    url = f"/api/v1/projects/{world.project_id}/members/{username}"
    assert client.put(url, json={"role": role}, headers=world.auth("admin")).status_code == 200


def test_login_sets_a_session_cookie_that_identifies(world: World) -> None:
    client = TestClient(make_app(world), base_url="http://localhost")
    assert client.get(ME).status_code == 401
    response = client.post("/api/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert SESSION_COOKIE in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    me = client.get(ME).json()
    assert (me["username"], me["via"], me["roles"]) == ("alice", "session", {})
    # default deny: a signed-in user sees no project until granted a role
    assert client.get("/api/v1/projects").json() == []
    assert client.get(f"/api/v1/projects/{world.project_id}").status_code == 403
    grant(client, world, "alice", "viewer")
    assert [p["name"] for p in client.get("/api/v1/projects").json()] == ["streets"]
    client.post("/api/v1/auth/logout")
    assert client.get(ME).status_code == 401


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong password"), ("nobody", PASSWORD), ("viewer", PASSWORD)]
)
def test_login_refuses_bad_passwords(world: World, username: str, password: str) -> None:
    client = TestClient(make_app(world), base_url="http://localhost")
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 401
    assert response.json() == {"detail": "wrong username or password"}
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_forged_or_expired_cookie_is_refused(world: World) -> None:
    app = make_app(world)
    client = TestClient(app, base_url="http://localhost")
    client.cookies.set(SESSION_COOKIE, "1.1700000000.forged")
    assert client.get(ME).status_code == 401
    signer: SessionSigner = app.state.signer
    client.cookies.set(SESSION_COOKIE, signer.sign(1, now=0))
    response = client.get(ME)
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_signer_round_trip_and_tamper() -> None:
    signer = SessionSigner(b"k" * 32, max_age_s=60)
    cookie = signer.sign(7, now=1000)
    assert signer.verify(cookie, now=1030) == 7
    with pytest.raises(BadCredentials):
        signer.verify(cookie.replace("7.", "8.", 1), now=1030)
    with pytest.raises(BadCredentials):
        SessionSigner(b"x" * 32, 60).verify(cookie, now=1030)


def test_tokens_are_created_listed_and_revoked(world: World) -> None:
    client = TestClient(make_app(world), base_url="http://localhost")
    created = client.post("/api/v1/auth/tokens", json={"name": "script"}, headers=world.auth("viewer"))
    assert created.status_code == 201
    token = created.json()["token"]
    mine = {"Authorization": f"Bearer {token}"}
    assert client.get(ME, headers=mine).json()["via"] == "token"
    listed = client.get("/api/v1/auth/tokens", headers=mine).json()
    assert "script" in [t["name"] for t in listed] and all("token" not in t for t in listed)
    # somebody else's token is not yours to revoke
    assert (
        client.delete(f"/api/v1/auth/tokens/{created.json()['id']}", headers=world.auth("admin")).status_code
        == 404
    )
    assert client.delete(f"/api/v1/auth/tokens/{created.json()['id']}", headers=mine).status_code == 204
    refused = client.get(ME, headers=mine)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


@pytest.mark.parametrize("header", ["Bearer lw_not-a-token", "Basic dXNlcjpwYXNz", "Bearer "])
def test_bad_authorization_is_401_not_anonymous(world: World, header: str) -> None:
    client = TestClient(make_app(world, local_mode=None), base_url="http://localhost", client=LOOPBACK)
    assert client.get(ME, headers={"Authorization": header}).status_code == 401


def test_tailscale_headers_only_from_trusted_proxies(world: World) -> None:
    headers = {"Tailscale-User-Login": "viewer", "Tailscale-User-Name": "V"}
    untrusted = TestClient(
        make_app(world, trusted_proxies=["100.64.0.1"]), base_url="http://localhost", client=("100.64.0.2", 5)
    )
    assert untrusted.get(ME, headers=headers).status_code == 401
    trusted = TestClient(
        make_app(world, trusted_proxies=["100.64.0.0/24"]),
        base_url="http://localhost",
        client=("100.64.0.2", 5),
    )
    me = trusted.get(ME, headers=headers).json()
    assert (me["username"], me["via"]) == ("viewer", "tailscale")
    # a first-time tailnet user becomes an account with no roles: default deny
    new = trusted.get(ME, headers={"Tailscale-User-Login": "carol@example.com"}).json()
    assert (new["username"], new["roles"]) == ("carol@example.com", {})
    assert (
        trusted.get(
            f"/api/v1/projects/{world.project_id}", headers={"Tailscale-User-Login": "carol@example.com"}
        ).status_code
        == 403
    )


def test_local_mode_needs_no_login_on_loopback(world: World) -> None:
    client = TestClient(make_app(world, local_mode=None), base_url="http://127.0.0.1:7860", client=LOOPBACK)
    me = client.get(ME).json()
    assert (me["username"], me["via"], me["is_admin"]) == ("local", "local", True)
    # a caller from another address is not the local user (a server bound wider by mistake)
    remote = TestClient(client.app, base_url="http://127.0.0.1:7860", client=("192.168.1.20", 5))
    assert remote.get(ME).status_code == 401
    assert client.post("/api/v1/projects", json={"name": "new"}).status_code == 201
    # a proxied request (Tailscale Serve forwards to 127.0.0.1) is never the local user
    assert client.get(ME, headers={"X-Forwarded-For": "100.64.0.9"}).status_code == 401


def test_network_bind_requires_auth_and_refuses_local_mode(world: World) -> None:
    client = TestClient(make_app(world, host="0.0.0.0", local_mode=None), base_url="http://192.168.1.5")
    assert client.get(ME).status_code == 401
    assert client.get(ME, headers=world.auth("viewer")).status_code == 200
    with pytest.raises(ValueError, match="loopback"):
        make_app(world, host="0.0.0.0", local_mode=True)
    assert Settings(host="127.0.0.2").is_local and not Settings(host="10.0.0.1").is_local


@pytest.mark.parametrize(
    ("host", "code"),
    [
        ("localhost:7860", 200),
        ("127.0.0.1", 200),
        ("[::1]:7860", 200),
        ("evil.example", 400),
        ("labelwright.ts.net", 200),
    ],
)
def test_host_header_guards_against_dns_rebinding(world: World, host: str, code: int) -> None:
    client = TestClient(make_app(world, local_mode=None, allowed_hosts=["labelwright.ts.net"]))
    response = client.get("/api/v1/health", headers={"Host": host})
    assert response.status_code == code
    if code == 400:
        assert "Host" in response.json()["detail"]


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, 201),
        ({"Origin": "http://localhost:7860"}, 201),
        ({"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost:7860"}, 201),
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": "http://localhost:3000"}, 403),  # another local app is another site
        ({"Origin": "null"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-site"}, 403),
    ],
)
def test_cross_site_writes_are_refused(world: World, headers: dict[str, str], code: int) -> None:
    client = TestClient(make_app(world, local_mode=None), base_url="http://localhost:7860", client=LOOPBACK)
    url = f"/api/v1/projects/{world.project_id}/categories"
    response = client.post(url, json={"name": "dog"}, headers=headers)
    assert response.status_code == code, response.text
    # reads are never refused for their origin
    assert client.get(url, headers=headers).status_code == 200


def test_guard_helpers() -> None:
    assert host_name("[::1]:8000") == "::1" and host_name("LocalHost:1") == "localhost"
    assert cross_site_reason("GET", {"origin": "http://evil"}) is None
    assert cross_site_reason("DELETE", {"origin": "http://evil", "host": "localhost"}) is not None
    behind_proxy = {"origin": "https://lw.tail1.ts.net", "host": "127.0.0.1:7860"}
    assert cross_site_reason("POST", behind_proxy) is not None
    assert cross_site_reason("POST", behind_proxy, frozenset({"lw.tail1.ts.net"})) is None


def test_cli_users_grant_and_tokens(home: Path) -> None:
    from typer.testing import CliRunner

    from server.app import create_app
    from server.cli_users import tokens_app, users_app
    from server.settings import get_settings
    from store.db import new_session, open_engine
    from store.projects import create_project

    with new_session(open_engine(home / "labelwright.db")) as session:
        pid = create_project(session, name="p").id
        session.commit()
    runner = CliRunner()
    assert runner.invoke(users_app, ["add", "bob", "--password", PASSWORD]).exit_code == 0
    assert runner.invoke(users_app, ["add", "bob"]).exit_code == 1  # taken
    assert runner.invoke(users_app, ["grant", "bob", "--project", "p", "--role", "reviewer"]).exit_code == 0
    assert runner.invoke(users_app, ["grant", "bob", "--project", "nope", "--role", "viewer"]).exit_code == 1
    made = runner.invoke(tokens_app, ["create", "bob", "--name", "ci"])
    assert made.exit_code == 0
    token = made.stdout.strip().splitlines()[-1]
    client = TestClient(
        create_app(get_settings().model_copy(update={"local_mode": False})), base_url="http://localhost"
    )
    me = client.get(ME, headers={"Authorization": f"Bearer {token}"}).json()
    assert me["username"] == "bob" and me["roles"] == {str(pid): "reviewer"}
    listed = runner.invoke(tokens_app, ["list", "bob", "--json"])
    token_id = json.loads(listed.stdout)[0]["id"]
    assert runner.invoke(tokens_app, ["revoke", str(token_id)]).exit_code == 0
    assert client.get(ME, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert runner.invoke(users_app, ["revoke", "bob", "--project", "p"]).exit_code == 0


def test_ui_identity_for_the_mounted_ui(world: World) -> None:
    from server.deps import ui_identity

    app = make_app(world)
    identity = ui_identity(app)
    # Like Gradio's, the probe lives in a mounted sub-app: its request.app is not the API app.
    sub = FastAPI()

    @sub.get("/probe")
    def probe(request: Request) -> dict[str, str | None]:
        return {"user": identity(request)}

    app.mount("/ui", sub)
    client = TestClient(app, base_url="http://localhost")
    assert client.get("/ui/probe").json() == {"user": None}
    assert client.get("/ui/probe", headers=world.auth("viewer")).json() == {"user": "viewer"}
    assert client.get("/ui/probe", headers={"Authorization": "Bearer lw_bad"}).json() == {"user": None}


def test_login_is_throttled_after_repeated_failures(world: World) -> None:
    app = make_app(world)
    app.state.login_throttle = LoginThrottle(max_failures=3, window_s=60)
    client = TestClient(app, base_url="http://localhost")
    wrong = {"username": "alice", "password": "not it at all"}
    assert [client.post("/api/v1/auth/login", json=wrong).status_code for _ in range(3)] == [401] * 3
    blocked = client.post("/api/v1/auth/login", json={"username": "alice", "password": PASSWORD})
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    # another account from the same client is not blocked by alice's failures
    assert (
        client.post("/api/v1/auth/login", json={"username": "bob", "password": PASSWORD}).status_code == 401
    )


def test_throttle_window_passes() -> None:
    throttle = LoginThrottle(max_failures=2, window_s=10)
    key = ("127.0.0.1", "alice")
    throttle.failed(key, now=0)
    throttle.failed(key, now=1)
    assert throttle.retry_after(key, now=2) == pytest.approx(8)
    assert throttle.retry_after(key, now=10.5) == 0
    throttle.failed(key, now=11)
    throttle.succeeded(key)
    assert throttle.retry_after(key, now=11) == 0
