"""Database wiring and reusable persistence pieces shared by the domains."""

from app.db.config import (
    MIGRATIONS_PATH,
    VERSION_TABLE,
    build_sqlalchemy_config,
    build_sqlalchemy_plugin,
)

__all__ = [
    "MIGRATIONS_PATH",
    "VERSION_TABLE",
    "build_sqlalchemy_config",
    "build_sqlalchemy_plugin",
]
