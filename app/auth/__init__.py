"""Keycloak bearer-token authentication: JWKS cache, token verifier, middleware and guards."""

from app.auth.guards import requires_client_role, requires_realm_role
from app.auth.principal import Caller, Principal

__all__ = ["Caller", "Principal", "requires_client_role", "requires_realm_role"]
