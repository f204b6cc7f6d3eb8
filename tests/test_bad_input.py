"""Hostile bodies and paths get a 4xx with the JSON error, never a 500 or a traceback.

Found by probing a running stack (issue 13, item 3): a JSON body nested 100,000 deep
raised RecursionError, a body with invalid UTF-8 inside a string raised
UnicodeDecodeError, and anonymous `GET /docs/assets/swagger-ui/%00` raised
ValueError("embedded null byte"); each was a 500 with ~2 KB of traceback in the log. Bodies
had no size limit (10 MB Litestar default) and were decoded whole before any check.

The live tests run the API as the image does (the Dockerfile's uvicorn command) and read
its whole output afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.config import load_settings
from app.http_input import MAX_JSON_DEPTH, json_nesting_exceeds
from tests.support.api_process import LoggedApi, image_like_api

BODY_LIMIT = load_settings().max_request_body_bytes


def _assert_json_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status_code"] == status
    assert isinstance(body["detail"], str)
    assert "Traceback" not in response.text
    return body  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedApi]:
    log_path = tmp_path_factory.mktemp("bad-input") / "api.log"
    with image_like_api(log_path, {"LOG_LEVEL": "INFO"}) as api:
        yield api


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# The 100,000-deep body of the finding is 200 KB, so the size limit (413) refuses it now;
# 30,000 deep fits the limit and reaches the nesting check.
HOSTILE_BODIES = {
    "nested 30,000 deep": _deep(30_000),
    "nested 2,000 deep": _deep(2_000),
    "objects nested 1,000 deep": b'{"a":' * 1_000 + b"1" + b"}" * 1_000,
    "invalid UTF-8 inside a string": b'{"name": "\xff\xfe", "birthday": "2019-01-01"}',
    "lone continuation byte": b'{"name": "caf\x80", "birthday": "2019-01-01"}',
}


@pytest.mark.parametrize("label", list(HOSTILE_BODIES))
def test_hostile_json_body_is_400_naming_the_body(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]], label: str
) -> None:
    headers = {**auth("alice"), "Content-Type": "application/json"}
    for path in ("/v1/children", "/v1/projects", "/v1/jobs"):
        response = client.post(path, content=HOSTILE_BODIES[label], headers=headers)
        body = _assert_json_error(response, 400)
        assert body["extra"] == [
            {"key": "body", "message": body["extra"][0]["message"], "source": "body"}  # type: ignore[index]
        ]


def test_body_over_the_limit_is_413_before_decoding(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    headers = {**auth("alice"), "Content-Type": "application/json"}
    _assert_json_error(client.post("/v1/children", content=_deep(100_000), headers=headers), 413)
    # An 8 MB object used to be decoded whole (~285 ms of a blocked event loop).
    big = b'{"name": "' + b"a" * 8_000_000 + b'", "description": "x"}'
    started = time.perf_counter()
    response = client.post("/v1/projects", content=big, headers=headers)
    assert time.perf_counter() - started < 2
    _assert_json_error(response, 413)
    just_over = b'{"name": "x", "description": "' + b" " * BODY_LIMIT + b'"}'
    _assert_json_error(client.post("/v1/projects", content=just_over, headers=headers), 413)


def test_the_largest_valid_body_fits_the_limit(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    # Every character of a maximal project escaped as a surrogate pair (12 bytes): the
    # worst way a client can legally spell a valid body still fits.
    astral = "\\ud83e\\udd8a"  # one code point, U+1F98A
    body = f'{{"name": "{astral * 200}", "description": "{astral * 2000}"}}'.encode()
    assert len(body) < BODY_LIMIT
    response = client.post(
        "/v1/projects", content=body, headers={**auth("dave"), "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text[:300]
    assert response.json()["name"] == "\U0001f98a" * 200


def test_nesting_within_the_limit_is_decoded_normally(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    # Brackets inside strings are text, not nesting: a description full of them is valid.
    body = b'{"name": "brackets", "description": "' + b"[{" * 500 + b'"}'
    response = client.post(
        "/v1/projects", content=body, headers={**auth("dave"), "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text[:300]


@pytest.mark.parametrize(
    ("body", "too_deep"),
    [
        (_deep(MAX_JSON_DEPTH), False),
        (_deep(MAX_JSON_DEPTH + 1), True),
        (b'["' + b"[" * 1000 + b'"]', False),
        (b'["\\"' + b"[" * 1000 + b'"]', False),
        (b"[" * 40, True),  # unterminated, still refused before the decoder sees it
        (b"[]" * 10_000, False),  # many brackets, shallow
    ],
)
def test_nesting_check(body: bytes, too_deep: bool) -> None:
    assert json_nesting_exceeds(body) is too_deep


NUL_PATHS = (
    "/docs/assets/swagger-ui/%00",
    "/docs/assets/swagger-ui/a%00b.js",
    "/docs/assets/redoc/%00",
    "/docs/assets/scalar/%00",
    "/docs/assets/swagger-ui/%0a",
)


@pytest.mark.parametrize("path", NUL_PATHS)
def test_control_character_in_a_public_path_is_400(client: TestClient[Litestar], path: str) -> None:
    body = _assert_json_error(client.get(path), 400)
    assert body["extra"][0]["key"] == "path"  # type: ignore[index]


def test_live_api_answers_hostile_input_with_4xx_and_logs_no_traceback(
    live_api: LoggedApi, token: Callable[[str], str]
) -> None:
    headers = {"Authorization": f"Bearer {token('alice')}", "Content-Type": "application/json"}
    with httpx.Client(base_url=live_api.base_url, timeout=30) as http:
        for label, content in HOSTILE_BODIES.items():
            for path in ("/v1/children", "/v1/projects"):
                response = http.post(path, content=content, headers=headers)
                assert response.status_code == 400, (label, path, response.text[:300])
        for path in NUL_PATHS:
            _assert_json_error(http.get(path), 400)
        deep = _deep(100_000)
        _assert_json_error(http.post("/v1/children", content=deep, headers=headers), 413)
        big = b"[" + b"1," * 5_000_000 + b"1]"  # a 10 MB array, announced
        _assert_json_error(http.post("/v1/projects", content=big, headers=headers), 413)

        def chunks() -> Iterator[bytes]:  # the same, streamed without a Content-Length
            yield b"["
            for _ in range(100):
                yield b"1," * 50_000
            yield b"1]"

        _assert_json_error(http.post("/v1/projects", content=chunks(), headers=headers), 413)
        assert http.get("/health").status_code == 200
    time.sleep(0.3)  # the log writer flushes in batches every ~20 ms
    log = live_api.log()
    assert "Traceback" not in log, log[-3000:]
    assert '"level":"error"' not in log, log[-3000:]
