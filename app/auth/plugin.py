"""Wires Keycloak authentication into the app: middleware, caller dependency, OpenAPI."""

from __future__ import annotations

from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import InitPluginProtocol
from litestar.types import Scope

from app.auth.jwks import JwksCache
from app.auth.middleware import BearerAuthMiddleware
from app.auth.principal import Principal
from app.auth.verifier import TokenVerifier
from app.config import Settings

__all__ = ["BEARER_SCHEME", "KeycloakAuthPlugin", "provide_caller"]

BEARER_SCHEME = "BearerAuth"


def provide_caller(scope: Scope) -> Principal:
    """The verified caller; the middleware has already refused anyone else."""
    user = scope["user"]
    assert isinstance(user, Principal)
    return user


class KeycloakAuthPlugin(InitPluginProtocol):
    """Every route requires a valid token unless its handler sets `exclude_from_auth`."""

    def __init__(self, settings: Settings, *, public_prefixes: tuple[str, ...]) -> None:
        self.jwks = JwksCache(
            settings.keycloak_jwks_url,
            refetch_cooldown_s=settings.jwks_refetch_cooldown_s,
            timeout_s=settings.jwks_fetch_timeout_s,
        )
        self.verifier = TokenVerifier(settings, self.jwks)
        self._public_prefixes = public_prefixes

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.append(BearerAuthMiddleware(self.verifier, self._public_prefixes))
        app_config.dependencies["caller"] = Provide(provide_caller, sync_to_thread=False)
        app_config.state["token_verifier"] = self.verifier
        app_config.on_shutdown.append(self.jwks.aclose)
        return app_config

    @staticmethod
    def openapi_components() -> Components:
        return Components(
            security_schemes={
                BEARER_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="A Keycloak access token (RS256).",
                )
            }
        )
