"""The reusable soft delete and tenant scope (app/db) on projects, on real PostgreSQL,
through Advanced-Alchemy's own repository and service methods.

Each test works inside one transaction that is rolled back, with a tenant of its own. A
session serves one caller: tests that act for several scopes use a session per scope.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from advanced_alchemy.exceptions import NotFoundError
from sqlalchemy import event, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from app.db.scope import EveryRow, ScopeError
from app.db.soft_delete import INCLUDE_DELETED
from app.db.tenancy import TenantScope
from app.projects.models import Project
from app.projects.repository import ProjectRepository
from app.projects.service import ProjectService
from tests.factories import ProjectModelFactory


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(os.environ["DATABASE_URL"])
    yield engine
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        yield session
        await session.rollback()


@pytest.fixture
def scope() -> TenantScope:
    return TenantScope(tenant_id=f"t-{uuid.uuid4().hex[:12]}", owner_sub="member-1")


@pytest.fixture
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL text of every statement the engine sends, in order."""
    seen: list[str] = []

    def record(_conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine.sync_engine, "before_cursor_execute", record)


async def add_projects(session: AsyncSession, scope: TenantScope, *names: str) -> list[uuid.UUID]:
    repository = ProjectRepository(session=session, scope=scope)
    rows = await repository.add_many([ProjectModelFactory.build(name=name) for name in names])
    return [row.id for row in rows]


async def stored(session: AsyncSession, project_id: uuid.UUID) -> Any:
    """The row as it is in the table, deleted or not (plain SQL, no repository)."""
    result = await session.execute(
        text("SELECT * FROM projects WHERE id = :id"), {"id": project_id}
    )
    return result.mappings().one_or_none()


# -- reads ----------------------------------------------------------------------------


async def test_every_read_skips_deleted_rows(session: AsyncSession, scope: TenantScope) -> None:
    live, other, gone = await add_projects(session, scope, "live", "other", "gone")
    repository = ProjectRepository(session=session, scope=scope)
    await repository.delete(gone)

    with pytest.raises(NotFoundError):
        await repository.get(gone)
    with pytest.raises(NotFoundError):
        await repository.get_one(Project.id == gone)
    assert await repository.get_one_or_none(id=gone) is None
    assert not await repository.exists(id=gone)
    assert await repository.exists(id=live)
    assert {row.id for row in await repository.get_many()} == {live, other}
    rows, total = await repository.get_many_and_count()
    assert ({row.id for row in rows}, total) == ({live, other}, 2)
    assert await repository.count() == 2
    # A caller's own statement gets the same conditions.
    own_statement = select(Project).where(Project.name.in_(["live", "gone"]))
    assert [row.id for row in await repository.get_many(statement=own_statement)] == [live]
    assert await repository.count(statement=own_statement) == 1

    service = ProjectService(session=session, scope=scope)
    with pytest.raises(NotFoundError):
        await service.get(gone)
    assert {row.id for row in await service.get_many()} == {live, other}
    assert await service.count() == 2
    _, service_total = await service.get_many_and_count()
    assert service_total == 2


async def test_soft_delete_without_a_caller_scope(engine: AsyncEngine, scope: TenantScope) -> None:
    """Maintenance (`EveryRow`) still never sees deleted rows unless it asks to."""
    async with AsyncSession(engine, expire_on_commit=False) as setup:
        keep, gone = await add_projects(setup, scope, "keep", "gone")
        await setup.commit()
    async with AsyncSession(engine, expire_on_commit=False) as session:
        service = ProjectService(session=session, scope=EveryRow())
        await service.delete(gone)
        mine = Project.tenant_id == scope.tenant_id
        assert [row.id for row in await service.get_many(mine)] == [keep]
        assert await service.count(mine) == 1
        with pytest.raises(NotFoundError):
            await service.get(gone)
        with_deleted = ProjectRepository(
            session=session, scope=EveryRow(), execution_options={INCLUDE_DELETED: True}
        )
        assert {row.id for row in await with_deleted.get_many(mine)} == {keep, gone}
        await session.rollback()


# -- delete ---------------------------------------------------------------------------


async def test_delete_is_one_update_and_keeps_the_row(
    session: AsyncSession, scope: TenantScope, statements: list[str]
) -> None:
    (project_id,) = await add_projects(session, scope, "doomed")
    repository = ProjectRepository(session=session, scope=scope)
    statements.clear()

    deleted = await repository.delete(project_id)

    assert len(statements) == 1
    (sql,) = statements
    assert sql.startswith("UPDATE projects SET")
    assert "is_deleted=" in sql.replace(" ", "")
    assert "deleted_at=" in sql.replace(" ", "")
    assert "NOT projects.is_deleted" in sql
    assert "projects.tenant_id =" in sql
    assert deleted.is_deleted is True
    assert deleted.deleted_at is not None

    row = await stored(session, project_id)
    assert row is not None
    assert row["is_deleted"] is True
    assert row["deleted_at"] == deleted.deleted_at
    assert row["name"] == "doomed"

    with pytest.raises(NotFoundError):
        await repository.delete(project_id)
    assert (await stored(session, project_id))["deleted_at"] == deleted.deleted_at


async def test_bulk_writes_that_would_bypass_soft_delete_are_refused(
    session: AsyncSession, scope: TenantScope
) -> None:
    a, b = await add_projects(session, scope, "a", "b")
    repository = ProjectRepository(session=session, scope=scope)
    with pytest.raises(TypeError, match="delete_many is refused"):
        await repository.delete_many([a, b])
    with pytest.raises(TypeError, match="delete_where is refused"):
        await repository.delete_where(Project.name == "a")
    with pytest.raises(TypeError, match="update_many is refused"):
        await repository.update_many([{"id": a, "name": "a 2", "version": 1}])
    assert {row.id for row in await repository.get_many()} == {a, b}
    for project_id in (a, b):
        assert (await stored(session, project_id))["is_deleted"] is False


async def test_delete_with_a_condition_that_fails_changes_nothing(
    session: AsyncSession, scope: TenantScope
) -> None:
    (project_id,) = await add_projects(session, scope, "guarded")
    repository = ProjectRepository(session=session, scope=scope)
    with pytest.raises(NotFoundError):
        await repository.delete(project_id, where=[Project.version == 99])
    assert (await stored(session, project_id))["is_deleted"] is False
    await repository.delete(project_id, where=[Project.version == 1])
    assert (await stored(session, project_id))["is_deleted"] is True


# -- update ---------------------------------------------------------------------------


async def test_updates_skip_deleted_rows(session: AsyncSession, scope: TenantScope) -> None:
    live, gone = await add_projects(session, scope, "live", "gone")
    repository = ProjectRepository(session=session, scope=scope)
    await repository.delete(gone)

    with pytest.raises(NotFoundError):
        await repository.update(Project(id=gone, name="revived"))
    service = ProjectService(session=session, scope=scope)
    with pytest.raises(NotFoundError):
        await service.update({"name": "revived"}, item_id=gone)
    assert (await stored(session, gone))["name"] == "gone"

    updated = await service.update({"name": "renamed"}, item_id=live)
    assert updated.name == "renamed"
    # The ORM's own updates bump the version too (`version_id_col`).
    assert updated.version == 2
    assert (await stored(session, live))["version"] == 2


async def test_include_deleted_sees_deleted_rows(session: AsyncSession, scope: TenantScope) -> None:
    live, gone = await add_projects(session, scope, "live", "gone")
    await ProjectRepository(session=session, scope=scope).delete(gone)
    everything = ProjectRepository(
        session=session, scope=scope, execution_options={INCLUDE_DELETED: True}
    )
    assert {row.id for row in await everything.get_many()} == {live, gone}
    assert (await everything.get(gone)).is_deleted is True


async def test_the_table_keeps_both_soft_delete_columns_in_step(session: AsyncSession) -> None:
    with pytest.raises(SAIntegrityError):
        await session.execute(
            text(
                "INSERT INTO projects (id, owner_sub, name, created_at, updated_at, is_deleted)"
                " VALUES (:id, 'x', 'half deleted', now(), now(), true)"
            ),
            {"id": uuid.uuid4()},
        )


# -- purge ----------------------------------------------------------------------------


async def age_deletion(session: AsyncSession, project_id: uuid.UUID, days: int) -> None:
    await session.execute(
        text(
            "UPDATE projects SET deleted_at = now() - make_interval(days => :days) WHERE id = :id"
        ),
        {"id": project_id, "days": days},
    )


async def test_purge_removes_only_rows_deleted_long_enough_ago(
    session: AsyncSession, scope: TenantScope
) -> None:
    live, recent, old, older = await add_projects(session, scope, "live", "recent", "old", "older")
    other_tenant = TenantScope(tenant_id=f"t-{uuid.uuid4().hex[:12]}", owner_sub="member-2")
    async with AsyncSession(session.bind, expire_on_commit=False) as theirs:
        (elsewhere,) = await add_projects(theirs, other_tenant, "elsewhere")
        await ProjectRepository(session=theirs, scope=other_tenant).delete(elsewhere)
        await age_deletion(theirs, elsewhere, 400)
        await theirs.commit()
    repository = ProjectRepository(session=session, scope=scope)
    for project_id in (recent, old, older):
        await repository.delete(project_id)
    await age_deletion(session, recent, 29)
    await age_deletion(session, old, 31)
    await age_deletion(session, older, 400)

    # A tenant-scoped service purges within its tenant only.
    service = ProjectService(session=session, scope=scope)
    assert await service.purge_deleted_projects(30) == 2
    assert await stored(session, old) is None
    assert await stored(session, older) is None
    assert (await stored(session, recent))["is_deleted"] is True
    assert (await stored(session, live))["is_deleted"] is False
    assert await stored(session, elsewhere) is not None

    # Zero days: everything already deleted goes.
    assert await service.purge_deleted_projects(0) == 1
    assert await stored(session, recent) is None
    assert await stored(session, live) is not None
    with pytest.raises(ValueError, match="negative"):
        await service.purge_deleted_projects(-1)


async def test_the_scheduled_purge_covers_every_tenant_and_commits(engine: AsyncEngine) -> None:
    first = TenantScope(tenant_id=f"t-{uuid.uuid4().hex[:12]}", owner_sub="member-1")
    second = TenantScope(tenant_id=None, owner_sub=f"loner-{uuid.uuid4().hex[:8]}")
    async with AsyncSession(engine, expire_on_commit=False) as setup:
        (old_first,) = await add_projects(setup, first, "old")
        await ProjectRepository(session=setup, scope=first).delete(old_first)
        await age_deletion(setup, old_first, 45)
        await setup.commit()
    async with AsyncSession(engine, expire_on_commit=False) as setup:
        old_second, fresh = await add_projects(setup, second, "old", "fresh")
        for project_id in (old_second, fresh):
            await ProjectRepository(session=setup, scope=second).delete(project_id)
        await age_deletion(setup, old_second, 45)
        await setup.commit()

    async with AsyncSession(engine) as job_session:
        purged = await ProjectService.for_maintenance(job_session).purge_deleted_projects(30)
    assert purged >= 2  # other tests' leftovers may be old enough too

    async with AsyncSession(engine) as check:
        assert await stored(check, old_first) is None
        assert await stored(check, old_second) is None
        assert (await stored(check, fresh))["is_deleted"] is True


# -- tenant scope ---------------------------------------------------------------------


async def test_rows_are_stamped_with_the_scope_and_seen_only_within_it(
    engine: AsyncEngine, scope: TenantScope
) -> None:
    teammate = TenantScope(tenant_id=scope.tenant_id, owner_sub="member-2")
    loner = TenantScope(tenant_id=None, owner_sub=f"loner-{uuid.uuid4().hex[:8]}")
    other_loner = TenantScope(tenant_id=None, owner_sub=f"loner-{uuid.uuid4().hex[:8]}")
    async with AsyncSession(engine, expire_on_commit=False) as setup:
        (shared,) = await add_projects(setup, scope, "shared")
        await setup.commit()
    async with AsyncSession(engine, expire_on_commit=False) as setup:
        (private,) = await add_projects(setup, loner, "private")
        await setup.commit()

    async with AsyncSession(engine, expire_on_commit=False) as check:
        row = await stored(check, shared)
        assert (row["tenant_id"], row["owner_sub"]) == (scope.tenant_id, "member-1")
        row = await stored(check, private)
        assert (row["tenant_id"], row["owner_sub"]) == (None, loner.owner_sub)

    async def seen_by(for_scope: TenantScope) -> list[uuid.UUID]:
        async with AsyncSession(engine) as session:
            repository = ProjectRepository(session=session, scope=for_scope)
            return [r.id for r in await repository.get_many()]

    assert await seen_by(teammate) == [shared]
    assert await seen_by(loner) == [private]
    assert await seen_by(other_loner) == []
    async with AsyncSession(engine) as session:
        with pytest.raises(NotFoundError):
            await ProjectRepository(session=session, scope=other_loner).delete(private)
    async with AsyncSession(engine) as session:
        with pytest.raises(NotFoundError):
            await ProjectRepository(session=session, scope=loner).get(shared)
    # A teammate may change and delete what another member created.
    async with AsyncSession(engine) as session:
        await ProjectRepository(session=session, scope=teammate).delete(shared)
        assert (await stored(session, shared))["is_deleted"] is True
        await session.commit()


async def test_one_session_serves_one_scope(session: AsyncSession, scope: TenantScope) -> None:
    ProjectRepository(session=session, scope=scope)
    ProjectRepository(session=session, scope=scope)  # the same scope again is fine
    with pytest.raises(ScopeError):
        ProjectRepository(session=session, scope=TenantScope(None, "someone-else"))


async def test_ownership_cannot_be_moved_or_forged(
    session: AsyncSession, scope: TenantScope
) -> None:
    (project_id,) = await add_projects(session, scope, "mine")
    repository = ProjectRepository(session=session, scope=scope)
    project = await repository.get(project_id)
    project.tenant_id = "someone-else"
    with pytest.raises(ScopeError):
        await session.flush()
    await session.rollback()

    with pytest.raises(ScopeError):
        async with AsyncSession(session.bind) as maintenance:
            await ProjectRepository(session=maintenance, scope=EveryRow()).add(
                Project(name="nobody's")
            )
    with pytest.raises(ScopeError):
        await repository.upsert_many([Project(name="bulk")])
    with pytest.raises(ValueError, match="subject"):
        TenantScope(tenant_id="acme", owner_sub="")


async def test_the_fast_path_and_the_session_see_the_same_rows(
    engine: AsyncEngine, scope: TenantScope
) -> None:
    """One criterion, two paths: the compiled-once listing and AA's count agree."""
    from app.projects.schemas import ProjectSort

    loner = TenantScope(tenant_id=None, owner_sub=f"loner-{uuid.uuid4().hex[:8]}")
    for for_scope in (scope, loner):
        async with AsyncSession(engine, expire_on_commit=False) as session:
            first, _ = await add_projects(session, for_scope, "one", "two")
            repository = ProjectRepository(session=session, scope=for_scope)
            await repository.delete(first)
            await session.commit()
            items, total = await repository.page(
                limit=10, offset=0, name_contains=None, sort=ProjectSort.NEWEST
            )
            assert total == await repository.count() == 1
            assert [item.name for item in items] == ["two"]


def test_utc_timestamps_are_aware() -> None:
    from app.clock import utc_now

    assert utc_now().tzinfo is datetime.UTC
