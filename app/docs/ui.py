"""The documentation pages, served offline: Swagger UI, Redoc and Scalar.

Swagger UI's files come from the `swagger-ui-bundle-v2` wheel, Redoc's and Scalar's from the
`star-openapi-redoc` / `star-openapi-scalar` wheels; the app serves them itself, so `/docs`,
`/docs/redoc` and `/docs/scalar` work with no internet access.

Swagger UI's and Scalar's "Authorize" sign a person in through the token issuer
(Keycloak, or scripts/dev_issuer.py) with the authorization code flow and PKCE, as the
public client KEYCLOAK_SPA_CLIENT_ID (`sign_in_scheme` in app/docs/__init__.py puts the
matching `oauth2` scheme in the document), and the pages keep the token across a reload.
"""

from __future__ import annotations

import html
import importlib.util
import json
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.openapi.plugins import RedocRenderPlugin, ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from app.http_input import refuse_control_characters_in_path

__all__ = [
    "DOCS_PATH",
    "OAUTH_SCHEME",
    "OAUTH_SCOPES",
    "OfflineRedocRenderPlugin",
    "OfflineScalarRenderPlugin",
    "OfflineSwaggerRenderPlugin",
]

DOCS_PATH = "/docs"
SWAGGER_ASSETS = f"{DOCS_PATH}/assets/swagger-ui"
REDOC_ASSETS = f"{DOCS_PATH}/assets/redoc"
SCALAR_ASSETS = f"{DOCS_PATH}/assets/scalar"
SWAGGER_REDIRECT = f"{SWAGGER_ASSETS}/oauth2-redirect.html"
# The sign-in scheme of the docs pages, beside the plain bearer token.
OAUTH_SCHEME = "KeycloakLogin"
OAUTH_SCOPES = {"openid": "sign in", "profile": "name and user name", "email": "e-mail address"}

_FAVICON = f"<link rel='icon' type='image/png' href='{SWAGGER_ASSETS}/favicon-32x32.png'>"


class OfflineSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI served from the packaged assets instead of a CDN, signing in with PKCE."""

    def __init__(self, spa_client_id: str) -> None:
        super().__init__(
            js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
            standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
            init_oauth={
                "clientId": spa_client_id,
                "usePkceWithAuthorizationCodeGrant": True,
                "scopes": " ".join(OAUTH_SCOPES),
            },
            path="/",
            favicon=_FAVICON,
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        # Litestar's page has no persistAuthorization; the redirect page is the one packaged
        # with this Swagger UI version, on this origin (allowed by the issuer under /docs/).
        options = (
            f"spec: {self.render_json(request, openapi_schema).decode()},"
            "dom_id: '#swagger-ui', deepLinking: true, persistAuthorization: true,"
            f"oauth2RedirectUrl: location.origin + {json.dumps(SWAGGER_REDIRECT)},"
            "presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],"
            "layout: 'BaseLayout'"
        )
        script = (
            f"const ui = SwaggerUIBundle({{{options}}});"
            f"ui.initOAuth({json.dumps(self.init_oauth)});"
        )
        head = f"{self.favicon}<link rel='stylesheet' href={json.dumps(self.css_url)}>{self.style}"
        body = (
            "<div id='swagger-ui'></div>"
            f"<script src={json.dumps(self.js_url)}></script>"
            f"<script src={json.dumps(self.standalone_preset_js_url)}></script>"
            f"<script>{script}</script>"
        )
        return _page(openapi_schema["info"]["title"], head, body)

    def receive_router(self, router: Router) -> None:
        router.register(
            _assets_router("/assets/swagger-ui", Path(swagger_ui_path), "swagger_ui_assets")
        )


def _package_dir(package: str, *parts: str) -> Path:
    """A data folder inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {package} package is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not folder.is_dir():
        raise RuntimeError(f"{package} has no {'/'.join(parts)} folder")
    return folder


def _assets_router(url_path: str, folder: Path, name: str) -> Router:
    return create_static_files_router(
        path=url_path,
        directories=[folder],
        name=name,
        include_in_schema=False,
        # A NUL in the file path made the file system lookup raise (500).
        guards=[refuse_control_characters_in_path],
    )


def _page(title: str, head: str, body: str) -> bytes:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title>{head}</head><body>{body}</body></html>"
    ).encode()


class OfflineRedocRenderPlugin(RedocRenderPlugin):
    """Redoc from the packaged standalone bundle (an ES module since Redoc 3)."""

    def __init__(self) -> None:
        super().__init__(
            js_url=f"{REDOC_ASSETS}/js/redoc.standalone.js",
            google_fonts=False,
            path="/redoc",
            favicon=_FAVICON,
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        # The page asks for the document by URL rather than inlining it, and telemetry
        # stays off: the docs must not try to call anyone.
        script = (
            f"import {{ init }} from {json.dumps(self.js_url)};"
            f"init({json.dumps(self.get_openapi_json_route(request))},"
            " { disableTelemetry: true }, document.getElementById('redoc'));"
        )
        return _page(
            openapi_schema["info"]["title"],
            self.favicon + self.style,
            f"<div id='redoc'></div><script type='module'>{script}</script>",
        )

    def receive_router(self, router: Router) -> None:
        folder = _package_dir("star_openapi_redoc", "templates", "redoc")
        router.register(_assets_router("/assets/redoc", folder, "redoc_assets"))


class OfflineScalarRenderPlugin(ScalarRenderPlugin):
    """Scalar from the packaged standalone bundle, without its web fonts or CDN stylesheet."""

    def __init__(self, spa_client_id: str) -> None:
        super().__init__(
            js_url=f"{SCALAR_ASSETS}/js/scalar.standalone.js",
            path="/scalar",
            favicon=_FAVICON,
        )
        self.spa_client_id = spa_client_id

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        options = {
            "url": self.get_openapi_json_route(request),
            # Nothing that calls Scalar's servers: no web fonts, telemetry, AI agent or
            # "open in client" links; the page stays about this API.
            "withDefaultFonts": False,
            "telemetry": False,
            "agent": {"disabled": True},
            "hideClientButton": True,
            "showDeveloperTools": "never",
            # Its auth panel signs in with the same public client and PKCE, and keeps
            # the token in the browser across reloads.
            "persistAuth": True,
            "authentication": {
                "preferredSecurityScheme": OAUTH_SCHEME,
                "securitySchemes": {
                    OAUTH_SCHEME: {
                        "flows": {
                            "authorizationCode": {
                                "x-scalar-client-id": self.spa_client_id,
                                "x-usePkce": "SHA-256",
                                "selectedScopes": list(OAUTH_SCOPES),
                            }
                        }
                    }
                },
            },
        }
        # The sign-in comes back to this very page (allowed by the issuer under /docs/),
        # wherever the API is served: only the browser knows that address.
        script = (
            f"const options = {json.dumps(options)};"
            f"options.authentication.securitySchemes[{json.dumps(OAUTH_SCHEME)}]"
            ".flows.authorizationCode['x-scalar-redirect-uri'] ="
            " location.origin + location.pathname;"
            "Scalar.createApiReference('#scalar', options);"
        )
        return _page(
            openapi_schema["info"]["title"],
            self.favicon + self.style,
            f"<div id='scalar'></div><script src={json.dumps(self.js_url)}></script>"
            f"<script>{script}</script>",
        )

    def receive_router(self, router: Router) -> None:
        folder = _package_dir("star_openapi_scalar", "templates", "scalar")
        router.register(_assets_router("/assets/scalar", folder, "scalar_assets"))
