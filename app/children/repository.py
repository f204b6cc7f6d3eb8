"""SQL for children: each operation is one statement on the asyncpg driver connection.

Statements are assembled from the constants below only (hence the `noqa: S608`); values
always travel as `$n` parameters. Ownership is part of every statement (`owner_sub` is the
caller's `sub`), never a separate read: a child that belongs to someone else behaves
exactly like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.children.schemas import Child
from app.db.driver import driver_connection

__all__ = ["OWNED_CHILD_CTE", "ChildFields", "ChildRepository"]

_COLUMNS = "c.id, c.name, c.birthday, c.interests, c.avatar, c.created_at, c.updated_at"

# The ownership rule, written once: $1 is the child id, $2 the caller's sub.
_OWNED_BY_CALLER = "c.id = $1 AND c.owner_sub = $2"

# For statements that combine the ownership check with other work (the content queries):
# a CTE `child(id, age, interest_keys)` that holds the caller's child or no row at all.
# $3 is today's UTC date; `interest_keys` are the interests lower-cased, for matching tags.
# MATERIALIZED: work out age and keys once, not again for every catalog row compared.
OWNED_CHILD_CTE = f"""child AS MATERIALIZED (
    SELECT c.id,
           extract(year FROM age($3::date::timestamp, c.birthday::timestamp))::int AS age,
           ARRAY(SELECT lower(interest) FROM unnest(c.interests) AS interest) AS interest_keys
    FROM children AS c
    WHERE {_OWNED_BY_CALLER}
)"""  # noqa: S608

_LIST = f"""
SELECT {_COLUMNS} FROM children AS c WHERE c.owner_sub = $1 ORDER BY c.created_at, c.id
"""  # noqa: S608

_GET = f"SELECT {_COLUMNS} FROM children AS c WHERE {_OWNED_BY_CALLER}"  # noqa: S608

# One statement, so concurrent requests with the same new id cannot race: one inserts,
# the others wait for its row lock and then update it. When the id exists but belongs to
# someone else the WHERE clause skips the update and no row comes back. `xmax = 0` only
# holds for a row version this statement inserted, which tells 201 from 200.
_UPSERT = f"""
INSERT INTO children AS c (id, owner_sub, name, birthday, interests, avatar)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (id) DO UPDATE
    SET name = excluded.name,
        birthday = excluded.birthday,
        interests = excluded.interests,
        avatar = excluded.avatar,
        updated_at = now()
    WHERE c.owner_sub = excluded.owner_sub
RETURNING {_COLUMNS}, (c.xmax = 0) AS created
"""  # noqa: S608

_DELETE = f"DELETE FROM children AS c WHERE {_OWNED_BY_CALLER}"  # noqa: S608


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildFields:
    """Validated, normalised values for a child's editable fields."""

    name: str
    birthday: dt.date
    interests: list[str]
    avatar: str | None


def _child(row: Any) -> Child:
    return Child(
        id=row[0],
        name=row[1],
        birthday=row[2],
        interests=row[3],
        avatar=row[4],
        created_at=row[5],
        updated_at=row[6],
    )


class ChildRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list_for_owner(self, owner_sub: str) -> list[Child]:
        async with driver_connection(self._engine) as connection:
            rows = await connection.fetch(_LIST, owner_sub)
        return [_child(row) for row in rows]

    async def get_owned(self, child_id: str, owner_sub: str) -> Child | None:
        async with driver_connection(self._engine) as connection:
            row = await connection.fetchrow(_GET, child_id, owner_sub)
        return None if row is None else _child(row)

    async def upsert_owned(
        self, child_id: str, owner_sub: str, fields: ChildFields
    ) -> tuple[Child, bool] | None:
        """The saved child and whether it was created; None when the id is someone else's."""
        async with driver_connection(self._engine) as connection:
            row = await connection.fetchrow(
                _UPSERT,
                child_id,
                owner_sub,
                fields.name,
                fields.birthday,
                fields.interests,
                fields.avatar,
            )
        return None if row is None else (_child(row), bool(row[7]))

    async def delete_owned(self, child_id: str, owner_sub: str) -> bool:
        async with driver_connection(self._engine) as connection:
            status: str = await connection.execute(_DELETE, child_id, owner_sub)
        return status != "DELETE 0"
