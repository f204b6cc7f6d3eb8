"""The API as the container image runs it: uvicorn with the Dockerfile's CMD flags, on a
free loopback port, its whole output kept in a file the test can read."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import devstack

from tests.support.processes import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


def image_command() -> list[str]:
    """The final `CMD [...]` of the Dockerfile (exec form), as an argument list."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    commands = re.findall(r"^CMD\s+(\[.*\])\s*$", text, flags=re.MULTILINE)
    if not commands:
        raise RuntimeError("the Dockerfile has no exec-form CMD")
    argv: list[str] = json.loads(commands[-1])
    return argv


def _with_option(argv: list[str], option: str, value: str) -> list[str]:
    if option in argv:
        at = argv.index(option)
        return [*argv[: at + 1], value, *argv[at + 2 :]]
    return [*argv, option, value]


@dataclass(frozen=True)
class LoggedApi:
    base_url: str
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def image_like_api(
    log_path: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[LoggedApi]:
    """uvicorn exactly as the image's CMD says, but on 127.0.0.1 and a free port."""
    port = devstack.free_port()
    argv = image_command()
    assert argv[0] == "uvicorn", argv
    argv = _with_option(argv, "--host", "127.0.0.1")
    argv = _with_option(argv, "--port", str(port))
    command = [sys.executable, "-m", *argv]
    env = {**os.environ, **(extra_env or {})}
    with log_path.open("wb") as output:
        process = devstack.spawn(command, env=env, cwd=REPO_ROOT, stdout=output, stderr=output)
    base_url = f"http://127.0.0.1:{port}"
    try:
        devstack.wait_for_http(f"{base_url}/health", timeout=30, process=process)
        yield LoggedApi(base_url, port, log_path)
    finally:
        devstack.stop_process(process, "api", timeout=10)
