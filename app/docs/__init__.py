"""The OpenAPI document and the documentation pages, wired for `app.main`.

- app/docs/ui.py: Swagger UI, Redoc and Scalar, served offline, signing in with PKCE;
- app/docs/operation_ids.py: short camelCase operation ids from the handler names;
- app/docs/legacy.py: the unversioned legacy aliases, marked deprecated;
- app/docs/errors.py: the `Error` schema and the errors every operation can answer.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Router, get
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, OAuthFlow, OAuthFlows, SecurityScheme

from app.auth import PUBLIC_OPT
from app.auth.plugin import BEARER_SCHEME
from app.config import Settings
from app.docs.errors import document_error_responses
from app.docs.legacy import mark_legacy_aliases
from app.docs.operation_ids import operation_id
from app.docs.ui import (
    DOCS_PATH,
    OAUTH_SCHEME,
    OAUTH_SCOPES,
    OfflineRedocRenderPlugin,
    OfflineScalarRenderPlugin,
    OfflineSwaggerRenderPlugin,
)

__all__ = [
    "build_openapi_config",
    "document_error_responses",
    "finished_response_is",
    "mark_legacy_aliases",
    "openapi_json",
]


@get(
    "/openapi.json",
    opt={PUBLIC_OPT: True},
    include_in_schema=False,
    media_type=MediaType.JSON,
    sync_to_thread=False,
)
def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The same document as /docs/openapi.json, at the root where tools look first."""
    return request.app.openapi_schema.to_schema()


def finished_response_is(schema: type[Any]) -> dict[int, ResponseSpec]:
    """`responses=` for a handler that returns a finished ASGIResponse: document its 200
    as Litestar documents a handler annotated with `schema`."""
    return {
        200: ResponseSpec(
            schema, description="Request fulfilled, document follows", generate_examples=False
        )
    }


def sign_in_scheme(settings: Settings) -> SecurityScheme:
    """The issuer's authorization code flow (PKCE is the client's part: the docs pages)."""
    endpoints = f"{settings.keycloak_issuer}/protocol/openid-connect"
    return SecurityScheme(
        type="oauth2",
        description=(
            "Sign in through the token issuer (authorization code with PKCE) as the public "
            f"client `{settings.keycloak_spa_client_id}`; leave the client secret empty."
        ),
        flows=OAuthFlows(
            authorization_code=OAuthFlow(
                authorization_url=f"{endpoints}/auth",
                token_url=f"{endpoints}/token",
                refresh_url=f"{endpoints}/token",
                scopes=dict(OAUTH_SCOPES),
            )
        ),
    )


def build_openapi_config(components: Components, settings: Settings) -> OpenAPIConfig:
    schemes = dict(components.security_schemes or {})
    schemes[OAUTH_SCHEME] = sign_in_scheme(settings)
    components.security_schemes = schemes
    return OpenAPIConfig(
        title="Litestar SPA backend",
        version="1.0.0",
        description=(
            "Children, child-aware learning content, projects and background jobs for a "
            "single-page app. Authenticate with a Keycloak access token: "
            "`Authorization: Bearer <token>` (WebSockets: `?token=`)."
        ),
        # The docs pages and their assets are public: the opt is inherited by every handler
        # Litestar and the render plugins put on this router.
        openapi_router=Router(
            path=DOCS_PATH,
            route_handlers=[],
            opt={PUBLIC_OPT: True},
            include_in_schema=False,
        ),
        render_plugins=[
            OfflineSwaggerRenderPlugin(settings.keycloak_spa_client_id),
            OfflineRedocRenderPlugin(),
            OfflineScalarRenderPlugin(settings.keycloak_spa_client_id),
        ],
        components=components,
        # Either a token pasted by hand or one from signing in through the issuer.
        security=[{BEARER_SCHEME: []}, {OAUTH_SCHEME: list(OAUTH_SCOPES)}],
        operation_id_creator=operation_id,
        use_handler_docstrings=True,
    )
