"""Loads the built-in content catalog (db/catalog/*.json) into its tables.

Migration 0002 calls `load_catalog` once the tables exist. It is written to be called
again by any later revision that ships changed catalog files
(`def upgrade() -> None: load_catalog(op.get_bind())`), and by hand with
`python -m db.catalog_loader` (reads DATABASE_URL):

- every item is upserted by `id`; rows whose values did not change are not rewritten,
  so a second run with the same files changes nothing;
- rows whose ids are no longer in the files are deleted (ids are never reused, see
  db/catalog/README.md);
- the columns written are those the table has *and* the files carry, read from the
  database at run time, so an older revision's call keeps working after a later one
  adds a column.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

__all__ = ["CATALOG_DIR", "CATALOG_TABLES", "TableLoad", "load_catalog", "read_catalog"]

CATALOG_DIR = Path(__file__).resolve().parent / "catalog"

# Upsert order: subjects before the flashcards that reference them (deletes run reversed).
CATALOG_TABLES: tuple[str, ...] = (
    "subjects",
    "affirmations",
    "flashcards",
    "chores",
    "outdoor_activities",
)


@dataclass(frozen=True, slots=True)
class TableLoad:
    """What one run did to one table."""

    table: str
    items: int
    written: int
    deleted: int


def read_catalog(catalog_dir: Path = CATALOG_DIR) -> dict[str, list[dict[str, Any]]]:
    """The items of every catalog file, checked for the two things the SQL relies on."""
    catalog: dict[str, list[dict[str, Any]]] = {}
    for table in CATALOG_TABLES:
        path = catalog_dir / f"{table}.json"
        items = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise ValueError(f"{path}: expected a JSON array of objects")
        ids = [item.get("id") for item in items]
        if not all(isinstance(item_id, str) and item_id for item_id in ids):
            raise ValueError(f"{path}: every item needs a non-empty string id")
        if len(set(ids)) != len(ids):
            raise ValueError(f"{path}: duplicate ids")
        catalog[table] = items
    return catalog


def _table_columns(connection: Connection, table: str) -> list[str]:
    rows = connection.execute(
        text(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = :table "
            "ORDER BY ordinal_position"
        ),
        {"table": table},
    )
    return [row[0] for row in rows]


def _upsert(
    connection: Connection, table: str, columns: Sequence[str], items: list[dict[str, Any]]
) -> int:
    quote = connection.dialect.identifier_preparer.quote
    name = quote(table)
    column_list = ", ".join(quote(column) for column in columns)
    changed = [column for column in columns if column != "id"]
    assignments = ", ".join(f"{quote(column)} = excluded.{quote(column)}" for column in changed)
    current = ", ".join(f"{name}.{quote(column)}" for column in changed)
    proposed = ", ".join(f"excluded.{quote(column)}" for column in changed)
    # The JSON becomes rows of the table's own type (JSON arrays become text[]).
    statement = (
        f"INSERT INTO {name} ({column_list}) "  # noqa: S608 - names come from the schema
        f"SELECT {column_list} FROM jsonb_populate_recordset(NULL::{name}, "
        "CAST(CAST(:items AS text) AS jsonb)) "
        f"ON CONFLICT (id) DO UPDATE SET {assignments} "
        f"WHERE ({current}) IS DISTINCT FROM ({proposed})"
    )
    result = connection.execute(text(statement), {"items": json.dumps(items)})
    return int(result.rowcount)


def _delete_missing(connection: Connection, table: str, ids: list[str]) -> int:
    name = connection.dialect.identifier_preparer.quote(table)
    result = connection.execute(
        text(f"DELETE FROM {name} WHERE NOT (id = ANY(CAST(:ids AS text[])))"),  # noqa: S608
        {"ids": ids},
    )
    return int(result.rowcount)


def load_catalog(connection: Connection, catalog_dir: Path = CATALOG_DIR) -> list[TableLoad]:
    """Make the catalog tables hold exactly the items in `catalog_dir`; idempotent.

    Runs in the caller's transaction (a migration's), so a failure leaves nothing half
    loaded.
    """
    catalog = read_catalog(catalog_dir)
    written: dict[str, int] = {}
    for table in CATALOG_TABLES:
        items = catalog[table]
        present = _table_columns(connection, table)
        if not present:
            raise ValueError(f"table {table!r} does not exist: run the migrations first")
        carried = {key for item in items for key in item}
        columns = [column for column in present if column in carried]
        written[table] = _upsert(connection, table, columns, items)
    deleted: dict[str, int] = {}
    for table in reversed(CATALOG_TABLES):
        ids = [item["id"] for item in catalog[table]]
        deleted[table] = _delete_missing(connection, table, ids)
    return [
        TableLoad(table, len(catalog[table]), written[table], deleted[table])
        for table in CATALOG_TABLES
    ]


async def _load_from_environment() -> list[TableLoad]:
    from sqlalchemy.ext.asyncio import create_async_engine

    url = os.environ.get("DATABASE_URL", "").strip()
    if not url.startswith("postgresql+asyncpg://"):
        sys.exit("configuration error: DATABASE_URL must be set to a postgresql+asyncpg:// URL")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(load_catalog)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    for load in asyncio.run(_load_from_environment()):
        print(f"{load.table}: {load.items} items, {load.written} written, {load.deleted} deleted")
