"""The example SPA (tests/e2e/spa) end to end in headless Chromium, as alice then bob.

The SPA's typed client is generated from the live API's /openapi.json and type-checked
(tsc), then built with Vite and served by `vite preview`. Against a real stack (API,
SAQ worker, dev issuer, a database of the test's own) playwright-core drives Debian's
Chromium: sign in as alice through the issuer's form (oidc-client-ts, code + PKCE),
create a child and see its affirmations and today's chores, create and edit a project,
meet a 412 from an edit made elsewhere and resolve it, run a demo job whose progress
socket is dropped midway and comes back with a refreshed token, sign out, and sign in as
bob, who sees none of alice's children. Screenshots: .devdata/screenshots/spa/.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import devstack
import pytest

from tests.support.browser import (
    E2E_DIR,
    chromium_or_reason,
    node_or_reason,
    npm_ci,
    run_node_script,
    screenshot_dir,
)
from tests.support.databases import private_database
from tests.support.processes import forget_saq_queue, running_api, running_worker

pytestmark = pytest.mark.slow
SPA_DIR = E2E_DIR / "spa"


@dataclass(frozen=True)
class Stack:
    spa: str
    api: str
    issuer: str


def _npx(*command: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        ["npx", "--no-install", *command],
        cwd=SPA_DIR,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"npx {' '.join(command)}:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def chromium() -> str:
    path, reason = chromium_or_reason()
    if path is None:
        pytest.skip(reason)
    node, why = node_or_reason()
    if node is None:
        pytest.skip(why)
    npm_ci(E2E_DIR)
    npm_ci(SPA_DIR)
    return path


@pytest.fixture(scope="module")
def stack(chromium: str) -> Iterator[Stack]:
    spa_port = devstack.free_port()
    spa = f"http://127.0.0.1:{spa_port}"
    queue = f"spa-{uuid.uuid4().hex[:12]}"
    with (
        devstack.dev_issuer(redirect_uris=[f"{spa}/*"]) as issuer,
        private_database("spa") as database_url,
    ):
        env = {
            **issuer.env(),
            "DATABASE_URL": database_url,
            "CORS_ORIGINS": spa,
            "SAQ_QUEUE": queue,
        }
        try:
            # A worker of its own, ready (liveness key written) before any job is sent.
            with running_worker(env, timeout=60), running_api(env) as api:
                yield from _serve_spa(spa, spa_port, api, issuer.issuer)
        finally:
            forget_saq_queue(os.environ["REDIS_URL"], queue)


def _serve_spa(spa: str, spa_port: int, api: str, issuer: str) -> Iterator[Stack]:
    # The typed client from this API's document, type-checked, then built.
    _npx(
        "openapi-typescript",
        f"{api}/openapi.json",
        "--default-non-nullable=false",
        "-o",
        "src/schema.d.ts",
    )
    _npx("tsc", "--noEmit")
    _npx("vite", "build", env={"VITE_API_URL": api, "VITE_OIDC_AUTHORITY": issuer})
    command = ["npx", "--no-install", "vite", "preview", "--host", "127.0.0.1"]
    command += ["--port", str(spa_port), "--strictPort"]
    server = devstack.spawn(command, cwd=SPA_DIR, stdout=subprocess.DEVNULL)
    try:
        devstack.wait_for_http(spa, timeout=30, process=server)
        yield Stack(spa=spa, api=api, issuer=issuer)
    finally:
        devstack.stop_process(server, "vite preview")


def test_the_spa_as_alice_then_bob(chromium: str, stack: Stack) -> None:
    shots = screenshot_dir("spa")
    tag = uuid.uuid4().hex[:6]
    result = run_node_script(
        "spa-e2e.mjs",
        {
            "spa": stack.spa,
            "api": stack.api,
            "issuer": stack.issuer,
            "shots": str(shots),
            "tag": tag,
        },
        chromium,
        timeout=240,
    )
    print(f"screenshots in {shots}")
    assert "error" not in result, result.get("error")
    assert "code_challenge_method=S256" in result["loginUrl"]
    # Children, and what the API offers for one.
    assert f"Ada {tag}" in result["aliceChildren"]
    assert result["affirmations"] > 0
    assert result["chores"] == 5
    # Projects: edited, a conflict shown to the user, then saved on the other version.
    assert result["edited"] is True
    assert result["otherTabStatus"] == 200
    assert "changed this project meanwhile" in result["conflictShown"]
    assert f"Rocket {tag} (other tab)" in result["projects"]
    # The demo job finished with a live bar, over a second socket after the drop, and
    # the second socket came with a token renewed through the refresh token.
    assert result["jobStatus"].startswith("complete")
    assert result["jobProgress"] == 100
    assert len(result["jobSockets"]) >= 2
    first_token = result["jobSockets"][0].split("token=")[1]
    assert all(url.split("token=")[1] != first_token for url in result["jobSockets"][1:])
    assert result["refreshes"] >= 1
    # Bob, of the same tenant, sees his own child and none of alice's.
    assert result["signedOut"] is True
    assert result["bobChildStatus"] == 201
    assert result["bobChildren"] == [f"Bo {tag}"]
