"""Row scopes: which rows of a table one caller may see, change and delete.

A model opts in by inheriting `OwnedMixin` (an `owner_sub` column) or `TenantOwnedMixin`
(`owner_sub` and `tenant_id`, app/db/tenancy.py). A scope is a plain value object built
from plain values (a subject, a tenant id) by the domain, never from the web layer's
types, and gives:

- `criterion(model)`: the ONE SQLAlchemy condition for that scope. Its values travel as
  bind parameters with fixed names (`<table>__scope_<field>`), so the same criterion
  serves ORM sessions (through `app.db.visibility`) and the compiled-once read path
  (`app.db.precompiled`), which supplies the values by those names;
- `shape`: what changes the statement's text (not its values), for the precompiled reads' cache;
- `stamp(row)`: give a new row to the scope's owner (and tenant).

Sessions learn their scopes through `bind_scope`, kept in the public `Session.info`
dict, so every ORM statement of the session carries them whatever builds it.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from advanced_alchemy.exceptions import RepositoryError
from sqlalchemy import ColumnElement, Text, bindparam, event, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Mapper, Session, declarative_mixin, mapped_column

__all__ = [
    "SCOPES_INFO_KEY",
    "EveryRow",
    "Owned",
    "OwnedMixin",
    "OwnerScope",
    "RowScope",
    "ScopeError",
    "bind_scope",
    "scope_parameter",
    "session_scopes",
]

# Where a session keeps its scopes: {mapped class: RowScope}.
SCOPES_INFO_KEY = "app.row_scopes"


class ScopeError(RepositoryError):
    """A scoped table used without a scope, or code moving a row to another owner."""


@declarative_mixin
class OwnedMixin:
    """`owner_sub`: the `sub` of the caller that created the row, fixed at insert."""

    # Text: subjects come from the identity provider; their length is its call.
    owner_sub: Mapped[str] = mapped_column(Text, nullable=False, sort_order=11)


@event.listens_for(OwnedMixin, "before_update", propagate=True)
def _keep_ownership(mapper: Mapper[Any], _connection: Connection, target: Any) -> None:
    """Ownership is fixed at insert: an ORM update that changes it is a bug, never applied."""
    state = inspect(target)
    for key in ("tenant_id", "owner_sub"):
        if key in mapper.attrs and state.attrs[key].history.has_changes():
            raise ScopeError(f"{type(target).__name__}.{key} cannot be changed")


class Owned(Protocol):
    owner_sub: ClassVar[Mapped[str]]


def scope_parameter(model: type[Any], field: str, value: Any) -> Any:
    """A bind parameter with a stable name per table and field, carrying `value`."""
    return bindparam(f"{model.__tablename__}__scope_{field}", value, type_=Text)


class RowScope(abc.ABC):
    """The rows of a scoped table one caller may work with."""

    @property
    @abc.abstractmethod
    def shape(self) -> Hashable:
        """Equal for two scopes whose criteria differ only in their values."""

    @abc.abstractmethod
    def criterion(self, model: type[Any]) -> ColumnElement[bool] | None:
        """The condition rows of `model` must meet; None: every row."""

    @abc.abstractmethod
    def parameters(self, model: type[Any]) -> dict[str, Any]:
        """The criterion's bind values by name (what a precompiled read sends)."""

    @abc.abstractmethod
    def stamp(self, row: Any) -> None:
        """Make a new row belong to this scope."""


@dataclass(frozen=True, slots=True)
class OwnerScope(RowScope):
    """Rows created by one subject (children, jobs)."""

    owner_sub: str

    def __post_init__(self) -> None:
        if not self.owner_sub:
            raise ValueError("a caller's scope needs the caller's subject")

    @property
    def shape(self) -> Hashable:
        return "owner"

    def criterion(self, model: type[Any]) -> ColumnElement[bool]:
        owner: ColumnElement[bool] = model.owner_sub == scope_parameter(
            model, "owner_sub", self.owner_sub
        )
        return owner

    def parameters(self, model: type[Any]) -> dict[str, Any]:
        return {f"{model.__tablename__}__scope_owner_sub": self.owner_sub}

    def stamp(self, row: Any) -> None:
        row.owner_sub = self.owner_sub


@dataclass(frozen=True, slots=True)
class EveryRow(RowScope):
    """No restriction: maintenance jobs (purges, sweeps), never a request."""

    @property
    def shape(self) -> Hashable:
        return "every"

    def criterion(self, model: type[Any]) -> None:
        return None

    def parameters(self, model: type[Any]) -> dict[str, Any]:
        return {}

    def stamp(self, row: Any) -> None:
        raise ScopeError("rows are created for a caller, not for every owner")


def _sync(session: Session | AsyncSession) -> Session:
    return session.sync_session if isinstance(session, AsyncSession) else session


def session_scopes(session: Session | AsyncSession) -> Mapping[type[Any], RowScope]:
    scopes: Mapping[type[Any], RowScope] = _sync(session).info.get(SCOPES_INFO_KEY, {})
    return scopes


def bind_scope(session: Session | AsyncSession, model: type[Any], scope: RowScope) -> None:
    """Every ORM statement of `session` that reads or writes `model` keeps to `scope`.

    A session serves one caller: binding a different scope for the same model is refused
    rather than silently widening or narrowing what earlier code saw.
    """
    scopes: dict[type[Any], RowScope] = _sync(session).info.setdefault(SCOPES_INFO_KEY, {})
    current = scopes.get(model)
    if current is not None and current != scope:
        raise ScopeError(f"this session already works for another scope of {model.__name__}")
    scopes[model] = scope
