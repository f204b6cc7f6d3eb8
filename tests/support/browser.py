"""Headless Chromium (Debian's `chromium` package) for tests that look at pages as a browser does.

`chromium_or_reason()` finds the browser, installing it with apt-get when it is missing and
this process may do so (root on a Debian-like system). `dump_dom()` loads a page with no
route to the internet: every host name but 127.0.0.1 fails to resolve, so a page that
needs a CDN renders broken, which is what the docs tests want to catch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser")
INSTALL_TIMEOUT_S = 900
PAGE_TIMEOUT_S = 90

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


def _find() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(command: list[str]) -> str:
    """Run an apt-get step; returns '' on success, else what went wrong."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return f"`{' '.join(command)}` took longer than {INSTALL_TIMEOUT_S} s"
    if result.returncode != 0:
        return f"`{' '.join(command)}` failed: {result.stderr.strip()[-300:]}"
    return ""


def _apt_install() -> str:
    """Install Debian's chromium; returns '' on success, else why it could not."""
    if not shutil.which("apt-get"):
        return "apt-get is not available"
    if os.geteuid() != 0:
        return "installing it needs root"
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if not _run(install):
        return ""
    # A fresh machine has no package lists yet.
    return _run(["apt-get", "update"]) or _run(install)


def chromium_or_reason() -> tuple[str | None, str]:
    """(path to chromium, '') or (None, why it cannot be had here)."""
    found = _find()
    if found:
        return found, ""
    problem = _apt_install()
    found = _find()
    return (found, "") if found else (None, f"Chromium is not installed and {problem}")


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
