"""README's Configuration section names every setting the API and the worker read, so a
new field in app/config.py without a line there fails here (as .env.example's does in
tests/test_config.py), and the README is a guide that stays within its size."""

from __future__ import annotations

import re

from app.config import Settings, WorkerSettings
from tests.support.processes import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def _variables(model: type[Settings] | type[WorkerSettings]) -> set[str]:
    return {
        str(field.validation_alias.choices[0])  # type: ignore[union-attr]
        for field in model.model_fields.values()
    }


def test_the_configuration_section_names_every_setting() -> None:
    section = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    missing = (_variables(Settings) | _variables(WorkerSettings)) - named
    assert not missing, f"README's Configuration section lacks {sorted(missing)}"


def test_the_readme_is_a_guide_of_at_most_600_lines_with_contents() -> None:
    assert len(README.splitlines()) <= 600
    assert "\n## Contents\n" in README
