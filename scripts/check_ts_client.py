"""Check that a TypeScript frontend can use the API with fully typed calls.

usage: .venv/bin/python scripts/check_ts_client.py [OPENAPI_JSON]

Without an argument the document is built from the app itself (create_app; nothing is
started or connected, so placeholder settings are used for any that are unset). Steps:

1. every operation has a unique operationId (generated clients name their calls by it);
2. `openapi-typescript --default-non-nullable=false` turns the document into
   tests/typescript/generated/api.d.ts with no error (a request field with a default stays
   optional);
3. no documented request or response body is untyped (`unknown`, `{}`, ...), asked of the
   TypeScript checker by tests/typescript/check-bodies.mjs;
4. tests/typescript/client.ts and domains/*.ts call every operation (method + path) with
   openapi-fetch; a domain file none of whose paths the document has yet (its branch not
   merged) is left out and reported as pending;
5. `tsc --noEmit` type-checks those files against the generated types, so renamed fields,
   changed types, renamed operation ids and removed endpoints fail.

The npm packages (pinned in tests/typescript/package-lock.json) are installed by `npm ci`
into tests/typescript/node_modules when that folder does not match the lock file. Node
and npm come from the machine. tests/test_typescript_client.py runs this in the suite.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from devstack import REPO_ROOT

TS_DIR = REPO_ROOT / "tests" / "typescript"
GENERATED = TS_DIR / "generated"
CLIENT = TS_DIR / "client.ts"
DOMAINS = TS_DIR / "domains"
STAMP = TS_DIR / "node_modules" / ".lock-checksum"
METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
# `api.GET("/v1/things/{id}", ...)`: the calls openapi-fetch offers, one per HTTP method.
CLIENT_CALL = re.compile(r"\.(GET|PUT|POST|PATCH|DELETE|HEAD|OPTIONS|TRACE)\(\s*[\"'`]([^\"'`]+)")
STEP_TIMEOUT_S = 300
# openapi-typescript 7 marks every field that has a default as required, request bodies
# included; a client may leave such a field out. The README's command says the same.
OPENAPI_TYPESCRIPT_OPTIONS = ("--default-non-nullable=false",)


class CheckFailed(Exception):
    """A step failed; the message says which and what the tool printed."""


def _run(command: list[str], what: str) -> str:
    started = time.monotonic()
    try:
        result = subprocess.run(
            command, cwd=TS_DIR, capture_output=True, text=True, timeout=STEP_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{what} took longer than {STEP_TIMEOUT_S} s") from None
    print(f"[ts-client] {what}: {time.monotonic() - started:.1f} s", file=sys.stderr)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-6000:]
        raise CheckFailed(f"{what} failed (exit {result.returncode}):\n{output}")
    return result.stdout


def install_packages() -> None:
    """`npm ci` unless node_modules already matches package-lock.json."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise CheckFailed(f"`{tool}` is not on PATH; install Node.js 18 or newer")
    checksum = hashlib.sha256((TS_DIR / "package-lock.json").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == checksum:
        return
    _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], "npm ci")
    STAMP.write_text(checksum)


def operation_id_problems(document: dict[str, Any]) -> list[str]:
    problems, seen = [], Counter[str]()
    for path, item in (document.get("paths") or {}).items():
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            operation_id = operation.get("operationId")
            if not operation_id:
                problems.append(f"{method.upper()} {path} has no operationId")
            else:
                seen[operation_id] += 1
    problems += [f"operationId {name!r} is used {n} times" for name, n in seen.items() if n > 1]
    return problems


def _documented(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in (document.get("paths") or {}).items()
        for method in METHODS
        if isinstance(item.get(method), dict)
    ]


def client_files(document: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    """(files to type-check, domain files waiting for their endpoints to exist)."""
    documented = set(_documented(document))
    active: list[Path] = [CLIENT]
    pending: list[Path] = []
    for path in sorted(DOMAINS.glob("*.ts")):
        calls = set(CLIENT_CALL.findall(path.read_text()))
        (active if calls & documented else pending).append(path)
    return active, pending


def uncalled_operations(document: dict[str, Any], files: list[Path]) -> list[str]:
    called = {call for path in files for call in CLIENT_CALL.findall(path.read_text())}
    return [
        f"{method} {path}" for method, path in _documented(document) if (method, path) not in called
    ]


def check(document: dict[str, Any]) -> list[str]:
    """Every problem found, as sentences; an empty list means the client is fully typed."""
    problems = operation_id_problems(document)
    install_packages()
    GENERATED.mkdir(exist_ok=True)
    schema_file = GENERATED / "openapi.json"
    schema_file.write_text(json.dumps(document, indent=2))
    generator = TS_DIR / "node_modules" / "openapi-typescript" / "bin" / "cli.js"
    _run(
        [
            "node",
            str(generator),
            str(schema_file),
            *OPENAPI_TYPESCRIPT_OPTIONS,
            "--output",
            str(GENERATED / "api.d.ts"),
        ],
        "openapi-typescript",
    )
    untyped = json.loads(
        _run(["node", "check-bodies.mjs", str(GENERATED / "api.d.ts")], "body types")
    )
    problems += untyped
    active, pending = client_files(document)
    for path in pending:
        print(
            f"[ts-client] pending (none of its paths documented yet): {path.name}", file=sys.stderr
        )
    problems += [
        f"no typed call for {operation}; add one to tests/typescript/domains/ (or client.ts)"
        for operation in uncalled_operations(document, active)
    ]
    # Only the active files: a pending domain's types do not exist yet.
    project = GENERATED / "tsconfig.json"
    files = [f"../{path.relative_to(TS_DIR)}" for path in active]
    project.write_text(json.dumps({"extends": "../tsconfig.json", "files": files, "include": []}))
    tsc = TS_DIR / "node_modules" / "typescript" / "bin" / "tsc"
    try:
        _run(["node", str(tsc), "--noEmit", "-p", str(project)], "tsc --noEmit")
    except CheckFailed as failure:
        problems.append(str(failure))
    return problems


def _document_from_app() -> dict[str, Any]:
    # Building the app reads settings but connects to nothing; placeholders do for export.
    placeholders = {
        "DATABASE_URL": "postgresql+asyncpg://placeholder@127.0.0.1:1/placeholder",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "KEYCLOAK_ISSUER": "http://127.0.0.1:1/realms/placeholder",
        "KEYCLOAK_AUDIENCE": "placeholder",
    }
    for name, value in placeholders.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(REPO_ROOT))
    from litestar.testing import TestClient

    from app.main import create_app

    with TestClient(create_app()) as client:  # startup hooks finish the document
        response = client.get("/openapi.json")
        response.raise_for_status()
        document: dict[str, Any] = response.json()
    return document


def main(argv: list[str]) -> int:
    document = json.loads(Path(argv[0]).read_text()) if argv else _document_from_app()
    try:
        problems = check(document)
    except CheckFailed as failure:
        problems = [str(failure)]
    for problem in problems:
        print(f"FAIL: {problem}")
    if not problems:
        print("TypeScript client check passed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
