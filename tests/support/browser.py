"""Headless Chromium (Debian's `chromium` package) for tests that look at pages as a browser does.

Tests never install system packages: `chromium_or_reason()` finds the browser or says why
the test is skipped (`.ci/run` installs it in CI before the suite starts). `dump_dom()`
loads a page with no route to the internet: every host name but 127.0.0.1 fails to
resolve, so a page that needs a CDN renders broken, which is what the docs tests want to
catch. `run_node_script()` runs a playwright-core script of tests/e2e against the same
Chromium (its executablePath; playwright never downloads a browser here).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser")
PAGE_TIMEOUT_S = 90
E2E_DIR = Path(__file__).resolve().parents[1] / "e2e"
# Screenshots of the browser tests, kept after the run (git-ignored) for a person to look at.
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".devdata" / "screenshots"


def screenshot_dir(name: str) -> Path:
    folder = SCREENSHOTS / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


# Quiet, offline, throwaway: no sandbox (containers run us as root), no GPU, nothing
# fetched in the background, no first-run work, no keyring/dbus prompts.
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--password-store=basic",
    "--use-mock-keychain",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def chromium_or_reason() -> tuple[str | None, str]:
    """(path to chromium, '') or (None, why the browser tests cannot run here)."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path, ""
    return None, (
        "Chromium is not installed (Debian/Ubuntu: `apt-get install chromium`; "
        ".ci/run does that in CI)"
    )


def node_or_reason() -> tuple[str | None, str]:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            return None, f"`{tool}` is not on PATH (Node.js 20.19 or newer is needed)"
    return shutil.which("node"), ""


def npm_ci(folder: Path, timeout: float = 600) -> None:
    """`npm ci` in `folder` unless its node_modules already matches package-lock.json."""
    stamp = folder / "node_modules" / ".lock-checksum"
    checksum = hashlib.sha256((folder / "package-lock.json").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == checksum:
        return
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"npm ci in {folder} failed:\n{result.stderr[-3000:]}")
    stamp.write_text(checksum)


def run_node_script(
    script: str, arguments: dict[str, Any], chromium: str, timeout: float = 180
) -> dict[str, Any]:
    """Run tests/e2e/<script> with one JSON argument; returns the JSON line it prints."""
    env = {**os.environ, "CHROMIUM": chromium}
    result = subprocess.run(
        ["node", script, json.dumps(arguments)],
        cwd=E2E_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    print(result.stderr[-20_000:], flush=True)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(
            f"node {script} failed (exit {result.returncode}):\n{result.stderr[-4000:]}"
        )
    answer: dict[str, Any] = json.loads(lines[-1])
    return answer


def dump_dom(chromium: str, url: str, profile_dir: Path, *, budget_ms: int = 15_000) -> str:
    """The page's DOM after its scripts ran for `budget_ms` of virtual time."""
    command = [
        chromium,
        *BASE_FLAGS,
        f"--user-data-dir={profile_dir}",
        f"--virtual-time-budget={budget_ms}",
        "--dump-dom",
        url,
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=PAGE_TIMEOUT_S, check=False
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError(
            f"chromium could not render {url} (exit {result.returncode}):\n"
            f"{result.stderr.strip()[-2000:]}"
        )
    return result.stdout
