"""Children of the signed-in parent: profiles that personalise the content endpoints."""

from app.domains import Domain, Ownership

DOMAIN = Domain(owner=Ownership.PARENT, routes=("app.children.controller:ChildrenController",))
