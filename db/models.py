"""Every module that declares tables, for Alembic to compare with the database.

Kept here, beside the migrations, rather than in app/db: the data layer knows no domain.
The domains are found by app/domains.py (each package under app/ with a models.py), so a
new domain needs no line here.
"""

from __future__ import annotations

from advanced_alchemy.base import orm_registry
from sqlalchemy import MetaData

from app.domains import domain_models

__all__ = ["load_model_metadata"]


def load_model_metadata() -> MetaData:
    domain_models()  # imports every domain's models module
    return orm_registry.metadata
