"""Statements for children, all on `ChildRepository` (Advanced-Alchemy, owner-scoped).

The repository is built with the caller's `OwnerScope`: ownership is the scope's one
criterion (`children.owner_sub = <caller>`), added by app/db to every statement, the
precompiled reads included. A child of someone else behaves exactly like one that does not
exist, and since ids are per parent it may share an id with one of yours.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert

from app.children.models import ChildModel
from app.children.schemas import Child
from app.db.crud import struct_from_row
from app.db.precompiled import PrecompiledSelect
from app.db.repository import DomainRepository
from app.db.scope import OwnerScope, ScopeError

__all__ = ["CHILD_COLUMNS", "ChildFields", "ChildRepository"]

# What a `Child` response holds (matched to its fields by name).
CHILD_COLUMNS = (
    ChildModel.id,
    ChildModel.name,
    ChildModel.birthday,
    ChildModel.interests,
    ChildModel.avatar,
    ChildModel.created_at,
    ChildModel.updated_at,
)

_LIST = PrecompiledSelect(
    lambda: select(*CHILD_COLUMNS).order_by(ChildModel.created_at, ChildModel.id), Child
)
_GET = PrecompiledSelect(
    lambda: select(*CHILD_COLUMNS).where(ChildModel.id == bindparam("child_id")), Child
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildFields:
    """Validated, normalised values for a child's editable fields."""

    name: str
    birthday: dt.date
    interests: list[str]
    avatar: str | None


class ChildRepository(DomainRepository[ChildModel]):
    model_type = ChildModel

    def _owner(self) -> str:
        if not isinstance(self.scope, OwnerScope):
            raise ScopeError("children are written for one parent")
        return self.scope.owner_sub

    async def list_for_owner(self) -> list[Child]:
        return (await self.run_precompiled(_LIST)).structs()

    async def get_owned(self, child_id: str) -> Child | None:
        found = (await self.run_precompiled(_GET, child_id=child_id)).structs()
        return found[0] if found else None

    async def upsert_owned(self, child_id: str, fields: ChildFields) -> tuple[Child, bool]:
        """The saved child and whether it was created, in one statement: concurrent
        requests with the same new id cannot race (one inserts, the others wait for its
        row lock, then update it). Another parent's child with that id is another row."""
        values = {
            "name": fields.name,
            "birthday": fields.birthday,
            "interests": fields.interests,
            "avatar": fields.avatar,
        }
        insert_child = insert(ChildModel).values(owner_sub=self._owner(), id=child_id, **values)
        statement = insert_child.on_conflict_do_update(
            index_elements=[ChildModel.owner_sub, ChildModel.id],
            set_={**values, "updated_at": func.now()},
        ).returning(
            *CHILD_COLUMNS,
            # Both stamps come from the inserting transaction's now(); an update sets
            # updated_at from a later one.
            (ChildModel.created_at == ChildModel.updated_at).label("created"),
        )
        row = (await self.session.execute(statement)).one()
        return struct_from_row(row, Child), bool(row.created)

    async def delete_owned(self, child_id: str) -> bool:
        deleted = await self.delete_where(ChildModel.id == child_id, sanity_check=False)
        return bool(deleted)
