"""Projects: tenant-scoped, soft-deleted, edited with optimistic concurrency (ETag/If-Match)."""
