"""Quality gate: the documentation pages work in a real browser with no internet.

Headless Chromium (Debian's package; skipped, with the reason, where it is missing) loads
/docs, /docs/redoc and /docs/scalar from a live uvicorn server, with every host name but
127.0.0.1 unresolvable. Swagger UI must render every operation of /openapi.json (so new
endpoints are covered as they land); Redoc and Scalar must render the document's tags.
The pages' HTML must not reference any other host but the token issuer's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.support.browser import chromium_or_reason, dump_dom
from tests.support.live import Operation, fetch_document, operations
from tests.support.processes import running_api

DOC_PAGES = ("/docs", "/docs/redoc", "/docs/scalar")


@pytest.fixture(scope="module")
def chromium() -> str:
    path, reason = chromium_or_reason()
    if path is None:
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def live_api() -> Iterator[str]:
    with running_api() as base_url:
        yield base_url


@pytest.fixture(scope="module")
def documented(live_api: str) -> list[Operation]:
    found = operations(fetch_document(live_api))
    assert found, "the OpenAPI document lists no operations"
    return found


def _visible_text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", " ", dom, flags=re.S | re.I)
    return " ".join(re.sub(r"<[^>]+>", " ", dom).split())


def test_swagger_ui_renders_every_operation_offline(
    chromium: str, live_api: str, documented: list[Operation], tmp_path: Path
) -> None:
    dom = dump_dom(chromium, f"{live_api}/docs", tmp_path / "profile")
    assert "swagger-ui" in dom, "Swagger UI did not start"
    missing = []
    for op in documented:
        # Swagger UI gives each operation the element id operations-<tag>-<operationId>.
        element_id = rf'id="operations-[^"]*-{re.escape(op.operation_id or "")}"'
        path_shown = f'data-path="{op.path}"' in dom
        if not op.operation_id or not re.search(element_id, dom) or not path_shown:
            missing.append(str(op))
    assert not missing, f"Swagger UI did not render: {missing}"


@pytest.mark.parametrize("page", ["/docs/redoc", "/docs/scalar"])
def test_redoc_and_scalar_render_offline(
    chromium: str, live_api: str, documented: list[Operation], page: str, tmp_path: Path
) -> None:
    text = _visible_text(dump_dom(chromium, f"{live_api}{page}", tmp_path / "profile"))
    title = fetch_document(live_api)["info"]["title"]
    assert title in text, f"{page} did not render the document (page text: {text[:500]!r})"
    tags = {tag for op in documented for tag in op.tags}
    assert all(tag in text for tag in tags), f"{page} lacks some of the tags {sorted(tags)}"
    assert any(op.path in text for op in documented), f"{page} shows no operation"


class _References(HTMLParser):
    """Every URL a page makes the browser load or link to (src, href, srcset...)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "action", "data-url", "srcset"} and value:
                self.urls.append(value)


@pytest.mark.parametrize("page", DOC_PAGES)
def test_docs_pages_reference_no_other_host(live_api: str, page: str) -> None:
    response = httpx.get(f"{live_api}{page}", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    parser = _References()
    parser.feed(response.text)
    # The token issuer is the one other host a page may name: "Authorize" signs in there.
    own_hosts = {urlsplit(live_api).netloc, urlsplit(os.environ["KEYCLOAK_ISSUER"]).netloc, ""}
    # Any absolute URL in the markup or inline scripts counts, not only attributes.
    inline = re.findall(r"""(?:https?:)?//[A-Za-z0-9.-]+[^\s'"<>]*""", response.text)
    foreign = {
        url
        for url in [*parser.urls, *inline]
        if urlsplit(urljoin(f"{live_api}{page}", url)).netloc not in own_hosts
    }
    assert not foreign, f"{page} refers to other hosts: {sorted(foreign)}"
    assert parser.urls, f"{page} loads nothing; is it the right page?"
