"""The built-in learning content, filtered and ranked for one child."""

from app.domains import Domain, Ownership

DOMAIN = Domain(owner=Ownership.SHARED, routes=("app.content.controller:ContentController",))
