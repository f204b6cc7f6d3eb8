"""The domain registry: every package under app/ with a `models.py` is a domain, and its
`__init__.py` says what kind with `DOMAIN = Domain(...)`.

Nothing central lists the domains: `domains()` finds them by scanning the package, so a
new domain (`litestar --app app.main:app domain new NAME`) registers itself. The registry
gives Alembic the model modules (db/models.py), the app its route handlers
(app/main.py), and anything that must walk every domain (the soft-delete purge walks the
soft-deletable models; an export or erase of a child's data walks the child-linked ones)
what each domain holds and who owns its rows.

Reading the registry imports only the domains' `__init__.py` files (plain declarations);
models and route handlers are imported by whoever asks for them.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import inspect
import pkgutil
from pathlib import Path
from typing import Any

__all__ = ["Domain", "Ownership", "domain_models", "domain_route_handlers", "domains"]

_APP = Path(__file__).parent


class Ownership(enum.StrEnum):
    """Who a domain's rows belong to (app/db/scope.py, app/db/tenancy.py)."""

    # One signed-in user's rows: a parent's children (`OwnedMixin`, `OwnerScope`), and the
    # jobs they started (checked by owner in the jobs repository).
    PARENT = "parent"
    # A tenant's rows, or a tenant-less caller's own (`TenantOwnedMixin`, `TenantScope`).
    TENANT = "tenant"
    # Nobody's: shared reference data (the content catalog).
    SHARED = "shared"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Domain:
    """What a domain declares in its `__init__.py`.

    `routes` are "module:attribute" names of route handlers (controllers, websocket
    handlers), imported when the app is built. `child_linked` says the rows hang off one of
    the owner's children (`ChildLinkedMixin`): they go with the child.
    """

    owner: Ownership
    routes: tuple[str, ...] = ()
    child_linked: bool = False
    # Filled in by `domains()` from where the declaration was found.
    package: str = ""

    @property
    def name(self) -> str:
        return self.package.rsplit(".", 1)[-1]

    @property
    def models_module(self) -> str:
        return f"{self.package}.models"

    def models(self) -> list[type[Any]]:
        """The mapped classes the domain's models module declares."""
        module = importlib.import_module(self.models_module)
        return [
            value
            for value in vars(module).values()
            if inspect.isclass(value)
            and value.__module__ == module.__name__
            and hasattr(value, "__mapper__")
        ]

    def route_handlers(self) -> list[Any]:
        handlers = []
        for route in self.routes:
            module, _, attribute = route.partition(":")
            handlers.append(getattr(importlib.import_module(module), attribute))
        return handlers


@functools.cache
def domains() -> tuple[Domain, ...]:
    """Every domain under app/, by package name."""
    found = []
    for info in sorted(pkgutil.iter_modules([str(_APP)]), key=lambda info: info.name):
        if not info.ispkg or not (_APP / info.name / "models.py").exists():
            continue
        package = f"app.{info.name}"
        declared = getattr(importlib.import_module(package), "DOMAIN", None)
        if not isinstance(declared, Domain):
            raise TypeError(f"{package} has models but no `DOMAIN = Domain(...)` in __init__.py")
        found.append(dataclasses.replace(declared, package=package))
    return tuple(found)


def domain_models() -> list[type[Any]]:
    """Every mapped class of every domain (importing the models modules)."""
    return [model for domain in domains() for model in domain.models()]


def domain_route_handlers() -> list[Any]:
    """Every domain's route handlers, for the app's `route_handlers`."""
    return [handler for domain in domains() for handler in domain.route_handlers()]
