"""The walk over the registry ("Your data", app/personal_data.py) takes in a domain added
later: a child-linked, soft-deleted model that exists only in this test (its own
registry, so Alembic never sees it) is exported under its child and erased with it,
soft-deleted rows included, and another parent's rows under the same child id stay."""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from advanced_alchemy.base import CommonTableAttributes
from advanced_alchemy.mixins import AuditColumns, UUIDv7PrimaryKey
from redis.asyncio import Redis
from sqlalchemy import String, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry

import app.personal_data
from app.children.models import ChildLinkedMixin, ChildModel
from app.db.personal import Erasure, OwnedRows, Rows
from app.db.soft_delete import SoftDeleteMixin
from app.domains import Domain, Ownership, domains
from app.personal_data import ExportTooLarge, erase_personal_data, export_personal_data
from tests.support.databases import throwaway_tables


class ThrowawayBase(CommonTableAttributes, DeclarativeBase):
    registry = registry()


class Note(UUIDv7PrimaryKey, AuditColumns, ChildLinkedMixin, SoftDeleteMixin, ThrowawayBase):
    __tablename__ = f"throwaway_notes_{uuid.uuid4().hex[:8]}"

    title: Mapped[str] = mapped_column(String(100))


NOTE_DATA = OwnedRows([Note])
NOTES = Domain(
    owner=Ownership.PARENT,
    child_linked=True,
    personal_data=f"{__name__}:NOTE_DATA",
    package="tests.throwaway_notes",
)


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[AsyncEngine]:
    async with throwaway_tables(
        ThrowawayBase.metadata, os.environ["TEST_DIRECT_DATABASE_URL"]
    ) as engine:
        yield engine


@pytest.fixture
def with_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry as it would be with the throwaway domain in app/ (listed last)."""
    registered = (*domains(), NOTES)
    monkeypatch.setattr(app.personal_data, "domains", lambda: registered)


async def _parent_with_notes(engine: AsyncEngine, parent: str) -> None:
    async with AsyncSession(engine) as session:
        session.add(
            ChildModel(owner_sub=parent, id="kid-1", name="Kid", birthday=datetime.date(2019, 1, 1))
        )
        await session.flush()
        session.add_all(
            [Note(owner_sub=parent, child_id="kid-1", title=title) for title in ("a", "b")]
        )
        await session.commit()
    async with engine.begin() as connection:  # one note soft-deleted: still kept
        await connection.execute(
            update(Note)
            .where(Note.owner_sub == parent, Note.title == "b")
            .values(is_deleted=True, deleted_at=datetime.datetime.now(datetime.UTC))
        )


async def test_a_new_child_linked_domain_is_exported_and_erased(
    engine: AsyncEngine, with_notes: None
) -> None:
    parent, other = f"parent-{uuid.uuid4().hex[:8]}", f"parent-{uuid.uuid4().hex[:8]}"
    for owner in (parent, other):
        await _parent_with_notes(engine, owner)

    async with AsyncSession(engine) as session:
        found = await export_personal_data(session, parent)
    [child] = found.children
    assert child["id"] == "kid-1"
    notes = child["linked"][Note.__tablename__]
    assert {(note["title"], note["is_deleted"]) for note in notes} == {("a", False), ("b", True)}

    redis = Redis.from_url(os.environ["REDIS_URL"])
    try:
        async with AsyncSession(engine) as session:
            counts = await erase_personal_data(session, parent, redis)
        assert counts[Note.__tablename__] == 2  # counted before the children took them
        assert counts["children"] == 1
        async with AsyncSession(engine) as session:
            assert await erase_personal_data(session, parent, redis) == dict.fromkeys(counts, 0)
    finally:
        await redis.aclose()

    async with engine.connect() as connection:
        owners = (await connection.scalars(select(Note.owner_sub))).all()
    assert set(owners) == {other}


class NeverRead:
    """A domain's part that fails the test if the walk reaches it."""

    async def export(self, session: AsyncSession, owner_sub: str) -> dict[str, Rows]:
        raise AssertionError("the export went on reading after it was too large")

    async def erase(self, session: AsyncSession, owner_sub: str) -> Erasure:
        raise AssertionError("not part of this test")


NEVER_READ = NeverRead()


async def test_an_export_too_large_stops_before_reading_the_next_domain(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The notes are read first (child-linked) and already pass the bound, so the domain
    # after them is never read: an export holds at most one domain more than it may keep.
    after = Domain(owner=Ownership.PARENT, personal_data=f"{__name__}:NEVER_READ", package="x")
    registered = (NOTES, after)
    monkeypatch.setattr(app.personal_data, "domains", lambda: registered)
    parent = f"parent-{uuid.uuid4().hex[:8]}"
    await _parent_with_notes(engine, parent)
    async with AsyncSession(engine) as session:
        with pytest.raises(ExportTooLarge) as too_large:
            await export_personal_data(session, parent, max_bytes=100)
    assert too_large.value.size > 100


def test_every_domain_with_owners_answers_for_their_rows() -> None:
    """Every domain but shared reference data is exported and erased, declared or not;
    one whose owner the generic walk cannot see must declare its own."""
    for domain in domains():
        shared = domain.owner is Ownership.SHARED
        assert (domain.personal_data_of() is None) == shared, domain.name
    unowned = Domain(owner=Ownership.PARENT, package="app.content")  # models without owner
    with pytest.raises(TypeError, match="declare personal_data"):
        unowned.personal_data_of()
