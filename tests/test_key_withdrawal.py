"""Keys are re-read every KEYCLOAK_JWKS_TTL_SECONDS: a withdrawn key stops working within
that time, tokens verified before included, while an unreachable JWKS keeps known keys.

Each test runs its own dev issuer (withdrawing a key from the session's would break every
other test's tokens) and an app with a 2-second TTL instead of the production 300.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator

import devstack
import jwt
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from app.config import load_settings
from app.main import create_app
from tests.realtime.test_socket_lifecycle import _job as queued_job
from tests.support.processes import forget_saq_queue, running_api

TTL_S = 2


@pytest.fixture
def private() -> Iterator[devstack.IssuerInfo]:
    with devstack.dev_issuer() as issuer:
        yield issuer


@pytest.fixture
def client(private: devstack.IssuerInfo) -> Iterator[TestClient[Litestar]]:
    settings = load_settings({**os.environ, **private.env()}).model_copy(
        update={"jwks_ttl_s": TTL_S, "jwks_refetch_cooldown_s": 0.2}
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _me(client: TestClient[Litestar], token: str) -> int:
    return client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def test_withdrawn_key_stops_working_within_the_ttl_cached_tokens_included(
    client: TestClient[Litestar], private: devstack.IssuerInfo
) -> None:
    old = private.mint(username="carol")
    assert _me(client, old) == 200  # verified once, now in the verified-token cache
    private.rotate()
    time.sleep(0.3)  # past the refetch cooldown, so the new kid may be looked up
    new = private.mint(username="carol")
    assert _kid(new) != _kid(old)
    assert _me(client, new) == 200

    private.withdraw(_kid(old))
    withdrawn_at = time.monotonic()
    while _me(client, old) == 200:
        assert time.monotonic() - withdrawn_at < TTL_S + 0.5, "withdrawn key still trusted"
        time.sleep(0.1)
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {old}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "unknown key" in response.json()["detail"]
    # The key still published keeps working, and so do new tokens signed with it.
    assert _me(client, new) == 200
    assert _me(client, private.mint(username="dave")) == 200


def test_the_jwks_is_read_again_once_the_ttl_has_passed(
    client: TestClient[Litestar], private: devstack.IssuerInfo
) -> None:
    token = private.mint(username="bob")
    assert _me(client, token) == 200
    fetches = private.jwks_requests()
    for _ in range(20):  # within the TTL: the cache answers
        assert _me(client, token) == 200
    assert private.jwks_requests() == fetches
    time.sleep(TTL_S + 0.2)
    assert _me(client, token) == 200
    assert private.jwks_requests() == fetches + 1


def test_an_unreachable_jwks_keeps_known_keys_past_the_ttl(
    client: TestClient[Litestar], private: devstack.IssuerInfo
) -> None:
    token = private.mint(username="alice")
    assert _me(client, token) == 200
    private.set_jwks_fault(503)
    try:
        time.sleep(TTL_S + 0.2)
        fetches = private.jwks_requests()
        started = time.monotonic()
        assert _me(client, token) == 200
        assert _me(client, private.mint(username="bob")) == 200  # new token, known key
        assert time.monotonic() - started < 2
        assert private.jwks_requests() > fetches, "the TTL should have sent it to the JWKS"
        forged_kid = private.mint(username="bob", headers={"kid": "never-published"})
        assert _me(client, forged_kid) == 401
    finally:
        private.set_jwks_fault(None)


def test_dev_issuer_refuses_to_withdraw_an_unknown_or_its_last_key(
    private: devstack.IssuerInfo,
) -> None:
    kids = [key["kid"] for key in private.jwks()["keys"]]
    assert len(kids) == 1
    with pytest.raises(Exception, match="400"):
        private.withdraw(kids[0])
    with pytest.raises(Exception, match="400"):
        private.withdraw("no-such-kid")


def test_a_socket_whose_key_is_withdrawn_is_closed_4401_within_the_ttl(
    private: devstack.IssuerInfo,
) -> None:
    """A socket's token is checked at connect: the socket itself must notice that the key
    went (issue 19: one kept receiving progress 340 s after its key was withdrawn)."""
    queue = f"idle-{uuid.uuid4().hex[:12]}"  # no worker: the job stays queued, the socket open
    env = {
        **private.env(),
        "SAQ_QUEUE": queue,
        "KEYCLOAK_JWKS_TTL_SECONDS": str(TTL_S),
        "KEYCLOAK_JWKS_REFETCH_COOLDOWN_SECONDS": "0.2",
    }
    try:
        with running_api(env) as base_url:
            old = private.mint(username="carol")
            job_id = queued_job(base_url, old)
            url = f"{base_url.replace('http://', 'ws://', 1)}/ws/jobs/{job_id}?token={old}"
            private.rotate()
            with connect(url, open_timeout=10) as socket:
                assert json.loads(socket.recv(timeout=10))["status"] == "queued"
                private.withdraw(_kid(old))
                withdrawn_at = time.monotonic()
                with pytest.raises(ConnectionClosed):
                    socket.recv(timeout=TTL_S + 5)
                closed_after = time.monotonic() - withdrawn_at
            assert socket.close_code == 4401
            assert socket.close_reason == "Token's signing key withdrawn"
            assert closed_after < TTL_S + 1.0
    finally:
        forget_saq_queue(os.environ["REDIS_URL"], queue)
