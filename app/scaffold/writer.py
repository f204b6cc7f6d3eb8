"""Writes a new CRUD domain in the house style (`litestar --app app.main:app domain new`).

From templates/ (Python's `string.Template`; a line starting `#?flag ` is kept, without
the marker, only when the flag holds): the domain package (model, schemas, repository,
service, dependency, controller; its `DOMAIN` declaration registers it, app/domains.py),
its tests, the TypeScript client file, and the README's API reference rows. The
migration is Alembic's own rendering of the new table (`render_python_code`, the
renderer `alembic revision --autogenerate` uses) through the project's script.py.mako,
so it needs no database. Everything written goes through `ruff format` and `ruff check
--fix`, as a person would before committing.
"""

from __future__ import annotations

import dataclasses
import importlib
import keyword
import re
import string
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Literal

from app.domains import Ownership

__all__ = ["DomainSpec", "ScaffoldError", "write_domain"]

TEMPLATES = Path(__file__).parent / "templates"
ROOT = Path(__file__).parents[2]
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z][a-z0-9]*)*$")
_FLAG_LINE = re.compile(r"^#\?(\w+) ?(.*)$")
_LEFT_OVER = re.compile(r"\$\{[A-Za-z_]+\}")
# (template, where it goes; {package} is the domain's package name)
_FILES = (
    ("__init__.py", "app/{package}/__init__.py"),
    ("models.py", "app/{package}/models.py"),
    ("schemas.py", "app/{package}/schemas.py"),
    ("repository.py", "app/{package}/repository.py"),
    ("service.py", "app/{package}/service.py"),
    ("deps.py", "app/{package}/deps.py"),
    ("controller.py", "app/{package}/controller.py"),
    ("test.py", "tests/test_{package}.py"),
    ("client.ts", "tests/typescript/domains/{package}.ts"),
)


class ScaffoldError(Exception):
    """The domain cannot be written as asked; the message says why."""


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return f"{word}es"
    if word.endswith("y") and word[-2:-1] not in tuple("aeiou"):
        return f"{word[:-1]}ies"
    return f"{word}s"


@dataclasses.dataclass(frozen=True, slots=True)
class DomainSpec:
    """`name` is singular, lowercase, words joined by `-` (`reading-log`)."""

    name: str
    owner: Ownership
    child_linked: bool = False
    soft_delete: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ScaffoldError("NAME is lowercase words joined by '-', e.g. reading-log")
        if self.owner not in (Ownership.PARENT, Ownership.TENANT):
            raise ScaffoldError("--owner is parent or tenant")
        if self.child_linked and self.owner is not Ownership.PARENT:
            raise ScaffoldError("--child-linked rows belong to the child's parent: --owner parent")
        if keyword.iskeyword(self.package):
            raise ScaffoldError(f"{self.package!r} is a Python keyword")

    @property
    def words(self) -> list[str]:
        return self.name.split("-")

    @property
    def plural_words(self) -> list[str]:
        return [*self.words[:-1], _plural(self.words[-1])]

    @property
    def package(self) -> str:
        return "_".join(self.plural_words)

    def flags(self) -> dict[str, bool]:
        parent = self.owner is Ownership.PARENT
        return {
            "parent": parent,
            "tenant": not parent,
            "child": self.child_linked,
            "nochild": not self.child_linked,
            "parent_only": parent and not self.child_linked,
            "soft": self.soft_delete,
            "nosoft": not self.soft_delete,
        }

    def values(self, revision: str) -> dict[str, str]:
        parent = self.owner is Ownership.PARENT
        owner_mixin = (
            "ChildLinkedMixin"
            if self.child_linked
            else ("OwnedMixin" if parent else "TenantOwnedMixin")
        )
        mixins = [owner_mixin, *(["SoftDeleteMixin"] if self.soft_delete else [])]
        title, titles = " ".join(self.words), " ".join(self.plural_words)
        return {
            "Name": "".join(word.capitalize() for word in self.words),
            "Names": "".join(word.capitalize() for word in self.plural_words),
            "name": "_".join(self.words),
            "names": self.package,
            "package": self.package,
            "table": self.package,
            "url": "-".join(self.plural_words),
            "title": title,
            "titles": titles,
            "Titles": titles.capitalize(),
            "OWNER": self.owner.name,
            "revision": revision,
            "mixins": ", ".join(mixins),
            "owner_phrase": "a signed-in parent's" if parent else "a tenant's (or a caller's own)",
            "child_phrase": ", each about one of their children" if self.child_linked else "",
            "soft_phrase": ", soft-deleted" if self.soft_delete else "",
            "soft_note": "Deletes are soft (`SoftDeleteMixin`).\n" if self.soft_delete else "",
            "scope_phrase": "one parent" if parent else "the caller's tenant",
            "tenant_owner_note": ", in your tenant (or yours alone without one)"
            if not parent
            else "",
            "delete_note": "Soft delete: gone at once, purged for good later; 404 when not yours."
            if self.soft_delete
            else "204 when deleted; 404 when not yours.",
        }


def render(template: str, values: dict[str, str], flags: dict[str, bool]) -> str:
    lines = []
    for line in template.splitlines():
        match = _FLAG_LINE.match(line)
        if match is None:
            lines.append(line)
        elif flags[match.group(1)]:
            lines.append(match.group(2))
    text = string.Template("\n".join(lines) + "\n").safe_substitute(values)
    left = _LEFT_OVER.findall(text)
    if left:
        raise ScaffoldError(f"template values missing: {sorted(set(left))}")
    return text


def _readme_rows(spec: DomainSpec, values: dict[str, str]) -> list[str]:
    url, item = f"/v1/{values['url']}", f"/v1/{values['url']}/{{{values['name']}_id}}"
    child = ", `childId` (not one of the caller's children: `404`)" if spec.child_linked else ""
    create = '`{"child_id", "title", "notes"?}`' if spec.child_linked else '`{"title", "notes"?}`'
    if spec.child_linked:
        create += "; a child that is not the caller's is `404`"
    soft = " (soft: purged after `PURGE_DELETED_AFTER_DAYS`)" if spec.soft_delete else ""
    return [
        f"| `GET {url}` | `200` | the caller's {values['titles']}, newest first: "
        f"`{{items, total, limit, offset}}`; `limit` 1\N{EN DASH}100 (20), `offset`{child} |",
        f"| `POST {url}` | `201` | {create} |",
        f"| `GET {item}` | `200` | one of the caller's {values['titles']} |",
        f"| `PATCH {item}` | `200` | change `title` and/or `notes` (`null` clears it) |",
        f"| `DELETE {item}` | `204` | delete one{soft} |",
    ]


def _add_readme_rows(readme: Path, rows: list[str]) -> None:
    """Append `rows` to the operation table of README's "API reference"."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    start = lines.index("## API reference")
    last = None
    for index in range(start + 1, len(lines)):
        if lines[index].startswith("## "):
            break
        if lines[index].startswith("| `"):
            last = index
    if last is None:
        raise ScaffoldError("README.md has no operation table under '## API reference'")
    lines[last + 1 : last + 1] = rows
    readme.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _render_type(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Advanced-Alchemy's column types as the plain SQLAlchemy types they store as."""
    from advanced_alchemy.types import GUID, DateTimeUTC

    if type_ == "type" and isinstance(obj, GUID):
        return "sa.Uuid()"
    if type_ == "type" and isinstance(obj, DateTimeUTC):
        return f"sa.DateTime(timezone={obj.timezone!r})"
    return False


def _write_migration(root: Path, spec: DomainSpec, values: dict[str, str], revision: str) -> Path:
    from alembic.autogenerate import render_python_code
    from alembic.config import Config
    from alembic.operations import ops
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    importlib.invalidate_caches()
    module = importlib.import_module(f"app.{spec.package}.models")
    table = getattr(module, f"{values['Name']}Model").__table__
    context = MigrationContext.configure(
        dialect_name="postgresql", opts={"render_item": _render_type}
    )
    indexes = sorted(table.indexes, key=lambda index: str(index.name))
    upgrade = ops.UpgradeOps(
        ops=[ops.CreateTableOp.from_table(table), *map(ops.CreateIndexOp.from_index, indexes)]
    )
    downgrade = ops.DowngradeOps(ops=[ops.DropTableOp.from_table(table)])

    def code(operations: ops.UpgradeOps | ops.DowngradeOps) -> str:
        rendered = render_python_code(
            operations, render_item=_render_type, migration_context=context
        )
        # Alembic's "please adjust" banners: this output is what we mean.
        return "\n".join(line for line in rendered.splitlines() if "###" not in line).strip()

    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "db" / "migrations"))
    scripts = ScriptDirectory.from_config(config)
    script = scripts.generate_revision(
        revision,
        values["table"],
        head=scripts.get_current_head(),
        upgrades=code(upgrade),
        downgrades=code(downgrade),
    )
    if script is None:
        raise ScaffoldError("Alembic wrote no migration")
    return Path(script.path)


def _tidy(root: Path, paths: list[Path]) -> None:
    python = [str(path) for path in paths if path.suffix == ".py"]
    for command in (["check", "--fix", "--quiet"], ["format", "--quiet"]):
        # Our own interpreter's ruff on files we just wrote.
        subprocess.run(  # noqa: S603
            [sys.executable, "-m", "ruff", *command, *python], cwd=root, check=False
        )


def write_domain(spec: DomainSpec, root: Path = ROOT) -> list[Path]:
    """Write the domain under `root` (the repository this `app` package is imported from;
    the new models module is imported to render its migration); the paths written."""
    package = root / "app" / spec.package
    if package.exists():
        raise ScaffoldError(f"app/{spec.package} already exists")
    readme = root / "README.md"
    if "\n## API reference\n" not in readme.read_text(encoding="utf-8"):
        raise ScaffoldError("README.md has no '## API reference' section for the new rows")
    revision = uuid.uuid4().hex[-12:]  # what `alembic revision` picks
    values, flags = spec.values(revision), spec.flags()
    written: list[Path] = []
    for template, target in _FILES:
        path = root / target.format(package=spec.package)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = render((TEMPLATES / f"{template}.tmpl").read_text(), values, flags)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    _tidy(root, written)  # the models module is imported next: formatted first
    migration = _write_migration(root, spec, values, revision)
    _tidy(root, [migration])
    written.append(migration)
    _add_readme_rows(readme, _readme_rows(spec, values))
    written.append(readme)
    return written
