"""What an API process loads: tooling that a server never runs stays out of its memory.

Each of these once came in through an import made only to reach something else, and
together they were about 20 MiB of a 120 MiB process (the target is < 110 MiB after
startup; `scripts/bench --soak` measures it): Alembic and the Litestar CLI (Rich,
rich-click) through Advanced-Alchemy's Litestar extension, and httpx with its own command
line (Rich, click, Pygments). When this fails, `python -X importtime -c "import app.main"`
shows which import brought the module back. `litestar database upgrade` still works
(tests/test_migrations.py): its commands load when the CLI starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.processes import REPO_ROOT

# Loaded by `litestar database ...` and `alembic ...`, never by the serving process.
COMMAND_LINE_ONLY = (
    "advanced_alchemy.alembic.commands",
    "advanced_alchemy.extensions.litestar",
    "alembic",
    "httpx",
    "litestar.cli",
    "mako",
    "pygments",
    "rich",
    "rich_click",
)


def _modules_after(statement: str, env: dict[str, str] | None = None) -> set[str]:
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            f"{statement}\nimport json, sys\n"
            "print(json.dumps(sorted(n for n, m in sys.modules.items() if m is not None)))",
        ],
        cwd=REPO_ROOT,
        env=dict(os.environ) if env is None else env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(shown.stdout.splitlines()[-1]))


def _command_line_modules(loaded: set[str]) -> list[str]:
    return sorted(
        name
        for name in loaded
        if any(name == root or name.startswith(f"{root}.") for root in COMMAND_LINE_ONLY)
    )


def test_the_api_process_loads_no_command_line_or_migration_tooling() -> None:
    loaded = _modules_after("import app.main")
    assert "advanced_alchemy.repository" in loaded  # the measurement saw the app's imports
    assert _command_line_modules(loaded) == []


def test_with_tracing_off_neither_the_api_nor_the_worker_loads_opentelemetry() -> None:
    # The tracing extra is installed here (a dev dependency), so this checks the gate in
    # app/tracing/__init__.py: redis-py, Litestar and litestar-saq would each load it.
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    for statement in ("import app.main", "import app.worker"):
        loaded = _modules_after(statement, env)
        assert "saq" in loaded
        assert sorted(name for name in loaded if name.split(".")[0] == "opentelemetry") == []
