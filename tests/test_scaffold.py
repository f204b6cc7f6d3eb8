"""`litestar domain new` in a scratch copy of the repository, for both owner kinds.

The copy (the files git knows, as they are now) gets a parent-owned, child-linked,
soft-deleted domain and a tenant one, through the real Litestar CLI. Then, there and
unedited: ruff and ruff format pass, mypy passes, pytest migrates a database of its own
to head and runs the generated tests, the README reference check (the rows were added),
`alembic check` (the migrations build what the models declare) and the visibility walk
over the route table, and the TypeScript client gate type-checks the generated client
files. Each domain's own app code stays within 250 lines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import REPO_ROOT

pytestmark = pytest.mark.slow

DOMAINS = {
    "reading_logs": ["reading-log", "--owner", "parent", "--child-linked", "--soft-delete"],
    "team_notes": ["team-note", "--owner", "tenant"],
}
APP_CODE_FILES = (
    "__init__.py",
    "models.py",
    "schemas.py",
    "repository.py",
    "service.py",
    "deps.py",
    "controller.py",
)
MAX_APP_LINES = 250


@pytest.fixture(scope="module")
def scratch(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Path]:
    if pytestconfig.getoption("pgbouncer"):
        pytest.skip("no database traffic of its own: runs once, in the direct pass")
    root = tmp_path_factory.mktemp("scaffold") / "repo"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    # Warm caches, when there are any, only save time: mypy checks hashes, not dates.
    if (REPO_ROOT / ".mypy_cache").is_dir():
        shutil.copytree(REPO_ROOT / ".mypy_cache", root / ".mypy_cache", symlinks=True)
    yield root
    shutil.rmtree(root.parent, ignore_errors=True)


def run(root: Path, *command: str, timeout: float = 180, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        command, cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output[-6000:]}"
    return output


@pytest.fixture(scope="module")
def scaffolded(scratch: Path) -> Path:
    for arguments in DOMAINS.values():
        run(scratch, sys.executable, "-m", "litestar", "--app", "app.main:app", "domain", "new",
            *arguments)  # fmt: skip
    return scratch


def test_the_domains_are_written_and_registered(scaffolded: Path) -> None:
    from app.domains import Ownership  # the registry's kinds, as the copy declares them

    for package in DOMAINS:
        assert (scaffolded / "app" / package / "controller.py").is_file()
        assert (scaffolded / "tests" / f"test_{package}.py").is_file()
        assert (scaffolded / "tests" / "typescript" / "domains" / f"{package}.ts").is_file()
    listed = run(
        scaffolded,
        sys.executable,
        "-c",
        "from app.domains import domains\n"
        "for d in domains(): print(d.name, d.owner, d.child_linked)",
    )
    assert f"reading_logs {Ownership.PARENT} True" in listed
    assert f"team_notes {Ownership.TENANT} False" in listed
    migrations = sorted((scaffolded / "db" / "migrations" / "versions").glob("*_*.py"))
    # <date>_<time>_<rev>_<slug>.py, after the numbered ones (alembic.ini's file_template).
    assert {path.name.split("_", 5)[-1] for path in migrations[-2:]} == {
        "reading_logs.py",
        "team_notes.py",
    }
    readme = (scaffolded / "README.md").read_text()
    assert "| `GET /v1/reading-logs/{reading_log_id}` | `200` |" in readme
    assert "| `DELETE /v1/team-notes/{team_note_id}` | `204` |" in readme


@pytest.mark.parametrize("package", DOMAINS)
def test_a_domains_app_code_is_short(scaffolded: Path, package: str) -> None:
    lines = sum(
        len((scaffolded / "app" / package / name).read_text().splitlines())
        for name in APP_CODE_FILES
    )
    assert lines <= MAX_APP_LINES


def test_lint_and_types_pass_unedited(scaffolded: Path) -> None:
    run(scaffolded, sys.executable, "-m", "ruff", "check", ".")
    run(scaffolded, sys.executable, "-m", "ruff", "format", "--check", ".")
    generated = [f"app/{package}" for package in DOMAINS]
    generated += [f"tests/test_{package}.py" for package in DOMAINS]
    run(scaffolded, sys.executable, "-m", "mypy", *generated)


def test_the_generated_tests_pass_on_a_migrated_database(scaffolded: Path) -> None:
    env = {
        **os.environ,
        # The server itself: the copy's own test session makes a database there and
        # migrates it to head, the new migrations included.
        "DATABASE_URL": os.environ["TEST_BASE_DATABASE_URL"],
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    tests = [f"tests/test_{package}.py" for package in DOMAINS]
    tests += [
        "tests/test_readme_reference.py",
        "tests/test_migrations.py::test_autogenerate_against_head_finds_nothing",
        # The visibility walk over the route table, the new routes included.
        "tests/test_visibility_paths.py::test_a_deleted_row_is_gone_from_every_route",
        "tests/test_visibility_paths.py::test_another_parents_child_is_invisible_everywhere",
    ]
    output = run(
        scaffolded,
        *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests),
        timeout=300,
        env=env,
    )
    assert " passed" in output


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_typescript_client_files_type_check(scaffolded: Path) -> None:
    output = run(scaffolded, sys.executable, "scripts/check_ts_client.py", timeout=600)
    assert "TypeScript client check passed" in output
    for package in DOMAINS:  # type-checked, not left out as pending
        assert f"pending (none of its paths documented yet): {package}.ts" not in output


@pytest.mark.parametrize(
    ("name", "owner", "child_linked", "problem"),
    [
        ("Reading_Log", "parent", False, "lowercase words"),
        ("note", "tenant", True, "--owner parent"),
        ("project", "tenant", False, "already exists"),
    ],
)
def test_the_command_refuses_what_it_cannot_write(
    tmp_path: Path, name: str, owner: str, child_linked: bool, problem: str
) -> None:
    from app.domains import Ownership
    from app.scaffold.writer import DomainSpec, ScaffoldError, write_domain

    (tmp_path / "app" / "projects").mkdir(parents=True)  # a domain that exists
    with pytest.raises(ScaffoldError, match=problem):
        write_domain(DomainSpec(name, Ownership(owner), child_linked), root=tmp_path)
    assert [path.name for path in (tmp_path / "app").iterdir()] == ["projects"]
