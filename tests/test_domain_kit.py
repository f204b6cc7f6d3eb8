"""The reusable data pieces (app/db) on a model that exists only in this test.

This is README's "Add a domain", followed as a new user would: a model that declares
`TenantOwnedMixin` and `SoftDeleteMixin`, a `DomainRepository` and a `PrecompiledSelect` for
its hot read, nothing else. Soft delete, the tenant scope and the precompiled read path must work
for it unchanged, on every path that reads the table.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import msgspec
import pytest
from advanced_alchemy.base import CommonTableAttributes
from advanced_alchemy.exceptions import NotFoundError
from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.mixins import UUIDv7PrimaryKey
from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry

from app.db.precompiled import PrecompiledSelect
from app.db.repository import DomainRepository, DomainService
from app.db.scope import EveryRow, ScopeError
from app.db.services import DeferredSession, ReadOnlyServiceError
from app.db.soft_delete import SoftDeleteMixin
from app.db.tenancy import TenantOwnedMixin, TenantScope
from tests.support.databases import throwaway_tables


class ThrowawayBase(CommonTableAttributes, DeclarativeBase):
    # Its own registry: the app's metadata (and Alembic) never see this table.
    registry = registry()


class Note(UUIDv7PrimaryKey, TenantOwnedMixin, SoftDeleteMixin, ThrowawayBase):
    __tablename__ = f"throwaway_notes_{uuid.uuid4().hex[:8]}"

    title: Mapped[str] = mapped_column(String(100))


class NoteView(msgspec.Struct):
    # Declared in another order than the columns are selected: mapped by name.
    title: str
    id: uuid.UUID


class NoteRepository(DomainRepository[Note]):
    model_type = Note


class NoteService(DomainService[Note, NoteRepository]):
    repository_type = NoteRepository


NOTES = PrecompiledSelect(lambda: select(Note.id, Note.title).order_by(Note.title), NoteView)


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[AsyncEngine]:
    async with throwaway_tables(ThrowawayBase.metadata, os.environ["DATABASE_URL"]) as engine:
        yield engine


def new_session(engine: AsyncEngine) -> AsyncSession:
    return AsyncSession(engine, expire_on_commit=False)


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


async def seed(engine: AsyncEngine, tenant: str) -> dict[str, uuid.UUID]:
    """Live `a`, `b`; deleted `gone` (all in `tenant`); `foreign` in another tenant."""
    ids: dict[str, uuid.UUID] = {}
    async with new_session(engine) as session:
        mine = NoteRepository(session=session, scope=TenantScope(tenant, "member-1"))
        for title in ("a", "b", "gone"):
            ids[title] = (await mine.add(Note(title=title))).id
        await mine.delete(ids["gone"])
        await session.commit()
    async with new_session(engine) as session:
        theirs = NoteRepository(session=session, scope=TenantScope(f"{tenant}-x", "other"))
        ids["foreign"] = (await theirs.add(Note(title="foreign"))).id
        await session.commit()
    return ids


async def test_every_repository_method_hides_deleted_and_foreign_rows(
    engine: AsyncEngine, tenant: str
) -> None:
    ids = await seed(engine, tenant)
    hidden = [ids["gone"], ids["foreign"]]
    async with new_session(engine) as session:
        repo = NoteRepository(session=session, scope=TenantScope(tenant, "member-2"))
        for item_id in hidden:
            with pytest.raises(NotFoundError):
                await repo.get(item_id)
            with pytest.raises(NotFoundError):
                await repo.get_one(id=item_id)
            assert await repo.get_one_or_none(id=item_id) is None
            assert not await repo.exists(id=item_id)
            with pytest.raises(NotFoundError):
                await repo.update(Note(id=item_id, title="changed"))
            with pytest.raises(NotFoundError):
                await repo.delete(item_id)
            with pytest.raises(TypeError, match="bypass soft delete"):
                await repo.delete_many([item_id])
            with pytest.raises(TypeError, match="bypass soft delete"):
                await repo.update_many([Note(id=item_id, title="changed")])
        assert await repo.count() == 2
        assert sorted(n.title for n in await repo.get_many()) == ["a", "b"]
        rows, total = await repo.get_many_and_count(LimitOffset(limit=1, offset=0))
        assert total == 2
        assert len(rows) == 1
        # A statement the caller builds gets the same rules.
        own = select(Note).where(Note.title.in_(["a", "gone", "foreign"]))
        assert [n.title for n in await repo.get_many(statement=own)] == ["a"]
        with pytest.raises(TypeError, match="bypass soft delete"):
            await repo.delete_where(Note.title == "foreign")
        # Writes through the generic methods keep to the scope too.
        visible = await repo.get(ids["a"])
        visible.title = "a2"
        assert (await repo.update(visible)).title == "a2"
        await session.rollback()

        service = NoteService(session=session, scope=TenantScope(tenant, "member-2"))
        assert sorted(n.title for n in await service.get_many(OrderBy("title", "asc"))) == [
            "a",
            "b",
        ]
        _, service_total = await service.get_many_and_count()
        assert service_total == 2
        with pytest.raises(NotFoundError):
            await service.get(ids["gone"])


async def test_the_precompiled_read_path_keeps_the_same_rules(
    engine: AsyncEngine, tenant: str
) -> None:
    await seed(engine, tenant)
    async with new_session(engine) as session:
        repo = NoteRepository(session=session, scope=TenantScope(tenant, "member-3"))
        notes = (await repo.run_precompiled(NOTES)).structs()
    assert notes == [NoteView(title="a", id=notes[0].id), NoteView(title="b", id=notes[1].id)]
    # The compiled statement is reused with another tenant's values: no leak either way.
    async with new_session(engine) as session:
        theirs = NoteRepository(session=session, scope=TenantScope(f"{tenant}-x", "other"))
        assert [n.title for n in (await theirs.run_precompiled(NOTES)).structs()] == ["foreign"]
    # Without a tenant: only the caller's own tenant-less rows (none here).
    async with new_session(engine) as session:
        alone = NoteRepository(session=session, scope=TenantScope(None, "member-1"))
        assert (await alone.run_precompiled(NOTES)).structs() == []


async def test_soft_delete_keeps_the_row_and_the_purge_removes_it(
    engine: AsyncEngine, tenant: str
) -> None:
    ids = await seed(engine, tenant)
    async with new_session(engine) as session:
        everything = NoteRepository(
            session=session, scope=EveryRow(), execution_options={"include_deleted": True}
        )
        gone = await everything.get(ids["gone"])
        assert gone.is_deleted
        assert gone.deleted_at is not None
        maintenance = NoteRepository(session=session, scope=EveryRow(), auto_commit=True)
        assert await maintenance.purge_deleted(datetime.timedelta(0)) >= 1
        assert await everything.get_one_or_none(id=ids["gone"]) is None
        assert await everything.get_one_or_none(id=ids["a"]) is not None


async def test_an_owned_table_refuses_work_without_a_scope(engine: AsyncEngine) -> None:
    with pytest.raises(ScopeError):
        async with new_session(engine) as session:
            NoteRepository(session=session)
    async with new_session(engine) as session:
        with pytest.raises(ScopeError):
            await session.execute(select(Note))


async def test_the_precompiled_read_path_with_the_driver_statement_cache_off(tenant: str) -> None:
    """PgBouncer in transaction mode: no named prepared statement may outlive a call."""
    engine = create_async_engine(
        os.environ["DATABASE_URL"],
        pool_size=1,
        max_overflow=0,
        connect_args={"statement_cache_size": 0},
    )
    other = create_async_engine(os.environ["DATABASE_URL"], pool_size=1, max_overflow=0)
    try:
        await seed(other, tenant)
        for candidate, expect_prepared in ((engine, False), (other, True)):
            async with new_session(candidate) as session:
                repo = NoteRepository(session=session, scope=TenantScope(tenant, "m"))
                assert [n.title for n in (await repo.run_precompiled(NOTES)).structs()] == [
                    "a",
                    "b",
                ]
            async with candidate.connect() as connection:
                raw: Any = (await connection.get_raw_connection()).driver_connection
                prepared = await raw.fetch("SELECT name FROM pg_prepared_statements")
            assert bool(prepared) is expect_prepared, prepared
    finally:
        await engine.dispose()
        await other.dispose()


async def test_services_open_a_session_only_when_a_statement_needs_one(
    engine: AsyncEngine, tenant: str
) -> None:
    """The provider's deferred session: hot reads never make one; a read-only service
    (the cheaper route of the hot GETs) refuses to."""
    await seed(engine, tenant)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    scope = TenantScope(tenant, "member-4")

    deferred = DeferredSession(maker)
    service = NoteService(session=cast("AsyncSession", deferred), scope=scope)
    assert [n.title for n in (await service.repository.run_precompiled(NOTES)).structs()] == [
        "a",
        "b",
    ]
    assert not deferred.started
    assert await service.count() == 2
    assert deferred.started
    await cast("AsyncSession", deferred).close()

    read_only = DeferredSession(maker, read_only=True)
    service = NoteService(session=cast("AsyncSession", read_only), scope=scope)
    assert len((await service.repository.run_precompiled(NOTES)).structs()) == 2
    with pytest.raises(ReadOnlyServiceError):
        await service.create(Note(title="never"))
    assert not read_only.started
