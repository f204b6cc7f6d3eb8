"""Projects: tenant-scoped, soft-deleted, edited with optimistic concurrency (ETag/If-Match)."""

from app.domains import Domain, Ownership

DOMAIN = Domain(owner=Ownership.TENANT, routes=("app.projects.controller:ProjectController",))
