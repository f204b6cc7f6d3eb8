"""The gateway in front of Litestar: who must authenticate, request ids, access lines."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

import pytest
from litestar import Litestar, get
from litestar.exceptions import WebSocketDisconnect
from litestar.routes import HTTPRoute, WebSocketRoute
from litestar.testing import TestClient

from app.auth import PUBLIC_OPT, Caller
from app.auth.plugin import KeycloakAuthPlugin
from app.auth.principal import authenticated_caller
from app.config import load_settings
from app.gateway import Gateway
from app.main import create_app

# Routes anyone may call. Everything else must refuse a request without a token.
PUBLIC_PATHS = {"/health", "/health/ready", "/openapi.json"}
PUBLIC_PREFIX = "/docs"


def _concrete(path: str) -> str:
    """A path template with a plausible value in each parameter."""

    def value(match: re.Match[str]) -> str:
        kind = match.group(1).split(":")[-1]
        return {"uuid": str(uuid.uuid4()), "path": "a/b", "int": "1"}.get(kind, "x")

    return re.sub(r"\{([^}]+)\}", value, path)


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path == PUBLIC_PREFIX or path.startswith(f"{PUBLIC_PREFIX}/")


def test_every_route_but_the_public_ones_refuses_anonymous_callers(
    client: TestClient[Litestar],
) -> None:
    checked = 0
    for route in client.app.routes:
        path = _concrete(route.path)
        if isinstance(route, WebSocketRoute):
            with client.websocket_connect(path) as socket:
                if _is_public(route.path):
                    socket.send_text("ping")
                    assert socket.receive_text() == "ping"
                else:
                    with pytest.raises(WebSocketDisconnect) as closed:
                        socket.receive_text()
                    assert closed.value.code == 4401, route.path
            checked += 1
            continue
        assert isinstance(route, HTTPRoute)
        for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
            response = client.request(method, path, headers={"Content-Type": "application/json"})
            if _is_public(route.path):
                assert response.status_code != 401, (method, route.path)
            else:
                assert response.status_code == 401, (method, route.path, response.text)
                assert response.headers["www-authenticate"].startswith("Bearer")
            checked += 1
    assert checked > 30  # every domain's routes were seen


def test_public_routes_cannot_hand_out_a_caller(token: Callable[[str], str]) -> None:
    # A handler marked public that asks for the caller anyway gets a 401, not a crash or
    # someone else's identity, whichever way it asks.
    @get("/peek-param", opt={PUBLIC_OPT: True})
    async def peek_param(caller: Caller) -> str:
        return caller.sub

    @get("/peek-context", opt={PUBLIC_OPT: True})
    async def peek_context() -> str:
        return authenticated_caller().sub

    app = create_app(load_settings())
    app.register(peek_param)
    app.register(peek_context)
    with TestClient(app) as client:
        for path in ("/peek-param", "/peek-context"):
            assert client.get(path).status_code == 401
            signed_in = {"Authorization": f"Bearer {token('alice')}"}
            assert client.get(path, headers=signed_in).status_code == 401


def test_a_route_registered_after_a_miss_still_requires_a_token(
    auth: Callable[[str], dict[str, str]],
) -> None:
    @get("/v1/late", sync_to_thread=False)
    def late() -> str:
        return "late"

    app = create_app(load_settings())
    with TestClient(app) as client:
        assert client.get("/v1/late").status_code == 404
        app.register(late)
        assert client.get("/v1/late").status_code == 401
        assert client.get("/v1/late", headers=auth("bob")).status_code == 200


def test_an_app_without_the_gateway_refuses_to_start() -> None:
    auth = KeycloakAuthPlugin(load_settings())

    @get("/open", sync_to_thread=False)
    def open_route() -> str:
        return "anyone"

    with (
        pytest.raises(ExceptionGroup) as refused,  # from Litestar's lifespan task group
        TestClient(Litestar([open_route], plugins=[auth], logging_config=None)),
    ):
        pass
    assert [str(error) for error in refused.value.exceptions] == [
        "authentication is off: add app.gateway.Gateway to the app's middleware"
    ]
    # Wired as app.main does it, the same route is closed.
    gateway = Gateway(auth.authenticator, None)
    app = Litestar([open_route], plugins=[auth], middleware=[gateway], logging_config=None)
    with TestClient(app) as c:
        assert c.get("/open").status_code == 401


def test_unmatched_paths_get_a_request_id_and_an_access_line(
    client: TestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.access"):
        response = client.get("/no/such/route", headers={"X-Request-ID": "lost-1"})
    assert response.status_code == 404
    request_id = response.headers["x-request-id"]
    assert request_id != "lost-1"  # the server's own id; the client's is only logged
    lines = [r for r in caplog.records if r.name == "app.access"]
    logged = [(r.path, r.status, r.request_id, r.client_request_id) for r in lines]  # type: ignore[attr-defined]
    assert logged == [("/no/such/route", 404, request_id, "lost-1")]


def test_a_refused_websocket_is_logged_as_401(
    client: TestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    socket_paths = [
        r.path
        for r in client.app.routes
        if isinstance(r, WebSocketRoute) and not _is_public(r.path)
    ]
    assert socket_paths
    path = _concrete(socket_paths[0])
    with (
        caplog.at_level(logging.INFO, logger="app.access"),
        client.websocket_connect(f"{path}?token=forged") as socket,
        pytest.raises(WebSocketDisconnect),
    ):
        socket.receive_text()
    lines = [r for r in caplog.records if r.name == "app.access"]
    assert [(r.method, r.status, r.sub) for r in lines] == [("WS", 401, None)]  # type: ignore[attr-defined]


def test_generated_request_ids_stay_unique(client: TestClient[Litestar]) -> None:
    ids = [client.get("/health").headers["x-request-id"] for _ in range(600)]
    assert len(set(ids)) == 600
    assert {len(request_id) for request_id in ids} == {32}


def test_the_caller_is_the_token_holder_on_every_request(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    # Alternating users on one app: nothing of one request's caller leaks into the next.
    for username in ["alice", "bob", "alice", "carol", "bob"] * 4:
        me = client.get("/v1/me", headers=auth(username)).json()
        assert me["username"] == username
        assert client.get("/v1/me").status_code == 401
