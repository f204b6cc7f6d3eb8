""" "Your data": everything the service keeps about one caller, exported or erased.

The walk goes over every domain in the registry (app/domains.py), so a domain added
later is exported and erased with the rest without a line here: each answers for its
own tables (`Domain.personal_data_of()`, app/db/personal.py). Child-linked domains'
rows are shown under their child in an export and erased before the children.

An erasure is one transaction under the caller's data lock (`owner_data_lock`), which
child creation takes too; work outside the database (Redis) follows the commit.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict

import msgspec
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.children.models import ChildModel
from app.db.personal import Erasure, PersonalData, Rows, owner_data_lock
from app.domains import Domain, domains

__all__ = ["ExportTooLarge", "PersonalExport", "erase_personal_data", "export_personal_data"]

logger = logging.getLogger(__name__)

CHILDREN = str(ChildModel.__tablename__)


@dataclasses.dataclass(frozen=True, slots=True)
class PersonalExport:
    """`children`: each child's row with `linked` (child-linked rows by table);
    `tables`: every other table's rows of the caller, by table name."""

    children: Rows
    tables: dict[str, Rows]


class ExportTooLarge(Exception):
    """The export passed `max_bytes` of JSON while it was being collected."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the export reached {size} bytes")
        self.size = size


def _holders() -> list[tuple[Domain, PersonalData]]:
    """Domains that keep something about a caller, child-linked ones first."""
    found = [(domain, data) for domain in domains() if (data := domain.personal_data_of())]
    return sorted(found, key=lambda pair: not pair[0].child_linked)


async def export_personal_data(
    session: AsyncSession, owner_sub: str, *, max_bytes: int | None = None
) -> PersonalExport:
    """Every domain's rows of `owner_sub`. With `max_bytes`, ExportTooLarge as soon as the
    rows read so far pass that many bytes of JSON, before the next domain is read."""
    linked: dict[str, dict[str, Rows]] = defaultdict(lambda: defaultdict(list))
    tables: dict[str, Rows] = {}
    size = 0
    for domain, data in _holders():
        found = await data.export(session, owner_sub)
        if max_bytes is not None:
            size += sum(len(msgspec.json.encode(rows)) for rows in found.values())
            if size > max_bytes:
                raise ExportTooLarge(size)
        for table, rows in found.items():
            if not domain.child_linked:
                tables[table] = rows
                continue
            for row in rows:
                linked[row.pop("child_id")][table].append(row)
    children = [
        {**child, "linked": dict(linked.get(child["id"], {}))} for child in tables.pop(CHILDREN, [])
    ]
    return PersonalExport(children=children, tables=tables)


async def erase_personal_data(
    session: AsyncSession, owner_sub: str, redis: Redis
) -> dict[str, int]:
    """Remove everything kept about `owner_sub`; how many of each kind went."""
    await session.execute(owner_data_lock(owner_sub))
    erasures: list[Erasure] = [await data.erase(session, owner_sub) for _, data in _holders()]
    await session.commit()
    counts: dict[str, int] = {}
    for erasure in erasures:
        counts.update(erasure.counts)
        if erasure.after_commit is not None:
            await erasure.after_commit(redis)
    # Counts only: nothing that names the caller or their children.
    logger.info("erased a caller's data: %s", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return counts
