"""Keycloak bearer-token authentication: JWKS cache, token verifier and the caller."""

from app.auth.authenticator import PUBLIC_OPT
from app.auth.principal import Caller, Principal

__all__ = ["PUBLIC_OPT", "Caller", "Principal"]
