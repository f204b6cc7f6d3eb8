"""Every module that declares tables, for Alembic to compare with the database.

Kept here, beside the migrations, rather than in app/db: the data layer knows no domain.
A new domain adds its models module to `MODEL_MODULES`.
"""

from __future__ import annotations

import importlib

from advanced_alchemy.base import orm_registry
from sqlalchemy import MetaData

__all__ = ["MODEL_MODULES", "load_model_metadata"]

MODEL_MODULES: tuple[str, ...] = (
    "app.children.models",
    "app.content.models",
    "app.projects.models",
    "app.jobs.models",
)


def load_model_metadata() -> MetaData:
    for module in MODEL_MODULES:
        importlib.import_module(module)
    return orm_registry.metadata
