"""The CRUD kit (app/db/crud.py) and the domain registry (app/domains.py) on their own.

A child-linked, soft-deleted model that exists only in this test (its own registry, so
Alembic never sees it) goes through `CrudService`: a page with its total, read, create,
change, remove, a missing or foreign child as `NotFoundError` (404), the child's delete
taking the rows with it, and the one purge.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from advanced_alchemy.base import CommonTableAttributes
from advanced_alchemy.exceptions import NotFoundError
from advanced_alchemy.mixins import AuditColumns, UUIDv7PrimaryKey
from msgspec import UNSET, UnsetType
from sqlalchemy import String, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry

from app.children.models import ChildLinkedMixin, ChildModel
from app.db.crud import CrudRepository, CrudService, Page, purge_soft_deleted
from app.db.scope import OwnerScope
from app.db.soft_delete import SoftDeleteMixin
from app.domains import Ownership, domain_route_handlers, domains
from tests.support.databases import throwaway_tables


class ThrowawayBase(CommonTableAttributes, DeclarativeBase):
    registry = registry()


class Log(UUIDv7PrimaryKey, AuditColumns, ChildLinkedMixin, SoftDeleteMixin, ThrowawayBase):
    __tablename__ = f"throwaway_logs_{uuid.uuid4().hex[:8]}"

    title: Mapped[str] = mapped_column(String(100))


class LogView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    child_id: str
    title: str


class LogPage(Page[LogView], frozen=True):
    items: list[LogView]


class LogCreate(msgspec.Struct, frozen=True):
    child_id: str
    title: str


class LogPatch(msgspec.Struct, frozen=True):
    title: str | UnsetType = UNSET


class LogRepository(CrudRepository[Log]):
    model_type = Log


class LogService(CrudService[Log, LogRepository, LogView]):
    repository_type = LogRepository
    schema = LogView


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[AsyncEngine]:
    async with throwaway_tables(
        ThrowawayBase.metadata, os.environ["TEST_DIRECT_DATABASE_URL"]
    ) as engine:
        yield engine


async def parent_with_child(engine: AsyncEngine) -> tuple[str, str]:
    parent, child = f"parent-{uuid.uuid4().hex[:8]}", f"kid-{uuid.uuid4().hex[:8]}"
    async with AsyncSession(engine) as session:
        session.add(
            ChildModel(owner_sub=parent, id=child, name="Kid", birthday=datetime.date(2019, 1, 1))
        )
        await session.commit()
    return parent, child


def service_for(session: AsyncSession, parent: str) -> LogService:
    return LogService(session=session, scope=OwnerScope(parent))


async def test_a_child_linked_domain_through_the_crud_service(engine: AsyncEngine) -> None:
    parent, child = await parent_with_child(engine)
    stranger, strangers_child = await parent_with_child(engine)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        logs = service_for(session, parent)
        first = await logs.create_one(LogCreate(child_id=child, title="one"))
        second = await logs.create_one(LogCreate(child_id=child, title="two"))
        assert (first.child_id, first.title) == (child, "one")
        page = await logs.page(LogPage, limit=1, offset=0)
        assert (page.items, page.total) == ([second], 2)  # newest first
        past = await logs.page(LogPage, limit=1, offset=5)
        assert (past.items, past.total) == ([], 2)
        assert await logs.read(first.id) == first
        assert (await logs.change(first.id, LogPatch(title="uno"))).title == "uno"
        assert (await logs.change(first.id, LogPatch())).title == "uno"
        await session.commit()

        # Another parent's child, or none, is a row the caller cannot see: 404.
        for other in (strangers_child, "no-such-child"):
            with pytest.raises(NotFoundError):
                await logs.create_one(LogCreate(child_id=other, title="x"))
            await session.rollback()

    async with AsyncSession(engine, expire_on_commit=False) as session:
        theirs = service_for(session, stranger)
        with pytest.raises(NotFoundError):
            await theirs.read(first.id)
        with pytest.raises(NotFoundError):
            await theirs.change(first.id, LogPatch(title="mine"))
        with pytest.raises(NotFoundError):
            await theirs.remove(first.id)
        assert (await theirs.page(LogPage, limit=10, offset=0)).total == 0

    # A session works for one caller: the owner's in a session of its own.
    async with AsyncSession(engine, expire_on_commit=False) as session:
        logs = service_for(session, parent)
        await logs.remove(first.id)
        await session.commit()
        with pytest.raises(NotFoundError):
            await logs.read(first.id)
        assert (await logs.page(LogPage, limit=10, offset=0)).total == 1

    async with AsyncSession(engine, expire_on_commit=False) as session:
        # The purge removes soft-deleted rows of every model it is given.
        purged = await purge_soft_deleted(session, [Log, ChildModel], datetime.timedelta(0))
        assert purged == {Log.__tablename__: 1}

    # The child's rows go with the child (the foreign key's ON DELETE CASCADE).
    async with engine.begin() as connection:
        await connection.execute(delete(ChildModel).where(ChildModel.owner_sub == parent))
        remaining = await connection.scalar(select(Log.id).where(Log.owner_sub == parent))
    assert remaining is None


def test_the_registry_finds_every_domain() -> None:
    found = {domain.name: domain for domain in domains()}
    assert set(found) >= {"children", "content", "jobs", "projects"}
    assert found["children"].owner is Ownership.PARENT
    assert found["projects"].owner is Ownership.TENANT
    assert [model.__name__ for model in found["projects"].models()] == ["Project"]
    assert not any(domain.child_linked for domain in found.values() if domain.name == "children")
    handlers: list[Any] = domain_route_handlers()
    assert {getattr(handler, "__name__", None) for handler in handlers} >= {
        "ChildrenController",
        "ProjectController",
        "ContentController",
        "JobController",
    }
