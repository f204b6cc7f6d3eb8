"""Wires Keycloak authentication into the app: authenticator, caller dependency, OpenAPI.

The authenticator runs in the gateway (app/gateway.py), the middleware `app.main` puts on
every route; startup fails if it is missing, so the API can never serve without it.
"""

from __future__ import annotations

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import InitPluginProtocol
from litestar.types import Scope

from app.auth.authenticator import Authenticator
from app.auth.jwks import JwksCache
from app.auth.principal import Principal, require_principal
from app.auth.verifier import TokenVerifier
from app.config import Settings

__all__ = ["BEARER_SCHEME", "VERIFIER_STATE_KEY", "KeycloakAuthPlugin", "provide_caller"]

BEARER_SCHEME = "BearerAuth"
# Where the app keeps its token verifier, for checks outside a request's headers (a
# WebSocket's in-band token renewal, app/realtime/sockets.py).
VERIFIER_STATE_KEY = "token_verifier"


def provide_caller(scope: Scope) -> Principal:
    """The verified caller; the gateway has already refused anyone else."""
    return require_principal(scope.get("user"))


class KeycloakAuthPlugin(InitPluginProtocol):
    """Every route requires a valid token unless its handler sets the `PUBLIC_OPT` opt."""

    def __init__(self, settings: Settings) -> None:
        self.jwks = JwksCache(
            settings.keycloak_jwks_url,
            ttl_s=settings.jwks_ttl_s,
            refetch_cooldown_s=settings.jwks_refetch_cooldown_s,
            timeout_s=settings.jwks_fetch_timeout_s,
        )
        self.verifier = TokenVerifier(settings, self.jwks)
        self.authenticator = Authenticator(self.verifier)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.dependencies["caller"] = Provide(provide_caller, sync_to_thread=False)
        app_config.state[VERIFIER_STATE_KEY] = self.verifier
        app_config.on_startup.append(self._require_gateway)
        app_config.on_shutdown.append(self.jwks.aclose)
        return app_config

    def _require_gateway(self, app: Litestar) -> None:
        # Found by what it holds, not by its class: the gateway (request layer) depends on
        # this package, not the reverse.
        if not any(
            getattr(middleware, "authenticator", None) is self.authenticator
            for middleware in app.middleware
        ):
            raise RuntimeError(
                "authentication is off: add app.gateway.Gateway to the app's middleware"
            )

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
