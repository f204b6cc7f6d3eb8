"""`scripts/dev` as a developer uses it: the stack starts, its settings land in an env
file, and a second terminal runs the documented commands with nothing but that file.
A Ctrl-C then stops everything without a traceback or an error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import devstack
import httpx
import pytest

from tests.support.processes import REPO_ROOT, forget_saq_queue

pytestmark = pytest.mark.slow


@dataclass
class DevStack:
    process: subprocess.Popen[bytes]
    env_file: Path
    log: Path

    def settings(self) -> dict[str, str]:
        values = {}
        for line in self.env_file.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                name, value = line.split("=", 1)
                values[name] = value.strip("'")
        return values


def _second_terminal_env(env_file: Path) -> dict[str, str]:
    """A new shell: no settings in the environment, only ENV_FILE (as the banner says)."""
    keep = {"PATH", "HOME", "LANG"}
    env = {name: value for name, value in os.environ.items() if name in keep}
    return {**env, "ENV_FILE": str(env_file)}


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    folder = tmp_path_factory.mktemp("dev")
    env_file, log = folder / "dev.env", folder / "dev.log"
    queue = f"dev-{uuid.uuid4().hex[:12]}"
    command = [sys.executable, "scripts/dev.py", "--no-reload", "--env-file", str(env_file)]
    command += ["--port", str(devstack.free_port()), "--issuer-port", str(devstack.free_port())]
    env = {**os.environ, "SAQ_QUEUE": queue}
    with log.open("wb") as output:
        process = devstack.spawn(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not env_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"scripts/dev did not get ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield DevStack(process, env_file, log)
    finally:
        devstack.stop_process(process, "scripts/dev", timeout=30)
        forget_saq_queue(os.environ["REDIS_URL"], queue)


def test_the_env_file_holds_the_running_stack_and_is_private(dev_stack: DevStack) -> None:
    settings = dev_stack.settings()
    assert settings["DATABASE_URL"] == os.environ["DATABASE_URL"]
    assert settings["REDIS_URL"] == os.environ["REDIS_URL"]
    assert httpx.get(f"{settings['KEYCLOAK_ISSUER']}/.well-known/openid-configuration").is_success
    assert dev_stack.env_file.stat().st_mode & 0o077 == 0
    banner = dev_stack.log.read_text()
    assert f"export ENV_FILE={dev_stack.env_file}" in banner
    for command in ("alembic upgrade head", "saq app.worker.settings", "uvicorn app.main:app"):
        assert command in banner


def test_a_second_terminal_runs_the_documented_commands(dev_stack: DevStack) -> None:
    env = _second_terminal_env(dev_stack.env_file)
    migrate = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    worker = subprocess.run(
        [sys.executable, "-c", "import app.worker"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert worker.returncode == 0, worker.stderr

    port = devstack.free_port()
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)]
    api = devstack.spawn(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        devstack.wait_for_http(f"http://127.0.0.1:{port}/health", timeout=30, process=api)
        issuer = dev_stack.settings()["KEYCLOAK_ISSUER"].split("/realms/")[0]
        token = httpx.get(f"{issuer}/dev/token/alice", headers=devstack.DEV_ISSUER_HEADERS).text
        me = httpx.get(
            f"http://127.0.0.1:{port}/v1/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert me.status_code == 200
        assert me.json()["username"] == "alice"
    finally:
        devstack.stop_process(api, "second-terminal api")


def test_ctrl_c_stops_everything_cleanly(dev_stack: DevStack) -> None:
    # Last in this module: it ends the stack the fixture started.
    os.killpg(dev_stack.process.pid, signal.SIGINT)
    assert dev_stack.process.wait(timeout=60) == 0
    assert not dev_stack.env_file.exists(), "the env file of a stopped stack was left behind"
    log = dev_stack.log.read_text()
    assert "all stopped" in log
    after = log.split("Ctrl-C stops everything.")[-1]
    for bad in ("Traceback", '"level":"error"', "KeyboardInterrupt"):
        assert bad not in after, f"{bad!r} after Ctrl-C:\n{after}"
