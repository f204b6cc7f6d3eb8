# shellcheck shell=bash
# Sourced by scripts/dev and scripts/test: make .venv match uv.lock (dev extra included)
# on a machine that has nothing but python3 >= 3.11. Sets REPO_ROOT and cds there.
#
# - Fast path: when the checksum of uv.lock + pyproject.toml equals the one recorded at
#   the last successful sync, nothing runs (no uv needed).
# - uv: taken from PATH (or its usual install places), else installed once with pip into
#   .devdata/tools/uv (git-ignored).

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

_bootstrap_fail() {
    echo "bootstrap: $*" >&2
    exit 1
}

_bootstrap_python() {
    local candidate
    for candidate in python3 python3.13 python3.12 python3.11 python; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

_bootstrap_uv() {
    local tools="$REPO_ROOT/.devdata/tools/uv" python candidate
    for candidate in "$(command -v uv 2>/dev/null || true)" "$HOME/.local/bin/uv" \
        "$HOME/.cargo/bin/uv" "$tools/bin/uv"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    python="$(_bootstrap_python)" || _bootstrap_fail "python3 3.11 or newer is required"
    echo "bootstrap: installing uv into .devdata/tools/uv (once)" >&2
    rm -rf "$tools"
    mkdir -p "$(dirname "$tools")"
    # pip's chatter goes to a log that is shown only if the install fails.
    if "$python" -m venv "$tools" >"$tools.log" 2>&1 &&
        "$tools/bin/python" -m pip install --quiet --disable-pip-version-check uv \
            >>"$tools.log" 2>&1; then
        echo "$tools/bin/uv"
        return 0
    fi
    cat "$tools.log" >&2
    _bootstrap_fail "could not install uv (no venv/pip for $python?); install uv yourself: https://docs.astral.sh/uv/"
}

_bootstrap_sync() {
    local stamp="$REPO_ROOT/.venv/.bootstrap-stamp" wanted uv python
    wanted="$(cat "$REPO_ROOT/uv.lock" "$REPO_ROOT/pyproject.toml" | cksum)"
    if [ -x "$REPO_ROOT/.venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
        return 0
    fi
    uv="$(_bootstrap_uv)"
    if [ ! -x "$REPO_ROOT/.venv/bin/python" ] && [ -z "${UV_PYTHON:-}" ]; then
        python="$(_bootstrap_python)" || _bootstrap_fail "python3 3.11 or newer is required"
        export UV_PYTHON="$python"
    fi
    echo "bootstrap: syncing .venv with uv.lock" >&2
    # Registries only: never download a Python build; use the one on this machine.
    # Bytecode compiled at install, as in the image: where PYTHONDONTWRITEBYTECODE is set,
    # every process would otherwise compile its imports from source, slower to start and
    # ~3 MiB larger (what scripts/bench measures should be what the image runs).
    UV_PYTHON_DOWNLOADS="${UV_PYTHON_DOWNLOADS:-never}" \
        "$uv" sync --frozen --extra dev --compile-bytecode --quiet ||
        _bootstrap_fail "uv sync failed"
    echo "$wanted" >"$stamp"
}

_bootstrap_sync
