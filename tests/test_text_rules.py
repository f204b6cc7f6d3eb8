"""Text a person typed: stored in NFC, invisible and control characters refused with a 400
naming the field, avatars limited to picture names and https:// URLs (README, "API reference").

Found by probing (issue 13, item 8): "Café" typed composed and decomposed made two
different projects and search found only one form; names accepted CR/LF, ANSI escapes,
right-to-left overrides and zero-width characters; `avatar: "javascript:alert(1)"` was
stored.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app.text import TextError, avatar, person_text, search_text

COMPOSED = "Caf\u00e9"
DECOMPOSED = "Cafe\u0301"

REFUSED = {
    "CR LF": "Mia\r\nEvil",
    "line feed": "Mia\nEvil",
    "tab": "Mia\tEvil",
    "ANSI escape": "\x1b[31mMia",
    "NUL": "Mia\x00",
    "DEL": "Mia\x7f",
    "C1 control": "Mia\x85",
    "right-to-left override": "Mia\u202egnp.exe",
    "left-to-right isolate": "Mia\u2066x",
    "zero-width space": "Mi\u200ba",
    "zero-width joiner": "Mi\u200da",
    "word joiner": "Mi\u2060a",
    "byte order mark": "\ufeffMia",
    "soft hyphen": "Mi\u00ada",
    "tag character": "Mia\U000e0041",
    # Issue 19, finding 8: names that render blank, invisible line breaks, "Zalgo" text.
    "only U+3164 HANGUL FILLER": "\u3164",
    "only U+115F HANGUL CHOSEONG FILLER": "\u115f\u115f",
    "only U+1160 HANGUL JUNGSEONG FILLER": "\u1160",
    "only U+FFA0 HALFWIDTH HANGUL FILLER": "\uffa0",
    "only U+2800 BRAILLE PATTERN BLANK": "\u2800 \u2800",
    "paragraph separator": "Mia\u2029",
    "line separator": "Mia\u2028Evil",
    "99 stacked combining marks": "M" + "\u0301" * 99 + "ia",
    "5 stacked combining marks": "Mi\u0301\u0302\u0303\u0304\u0305a",
}


def _keys(response: Any) -> list[str]:
    return [item["key"] for item in response.json().get("extra", [])]


def _child(name: str = "Mia", **fields: Any) -> dict[str, Any]:
    return {"name": name, "birthday": "2018-05-01", **fields}


# --- the rules themselves ---------------------------------------------------------------


def test_person_text_normalises_to_nfc() -> None:
    assert person_text(DECOMPOSED, "name") == COMPOSED
    assert person_text(COMPOSED, "name") == COMPOSED
    assert unicodedata.is_normalized("NFC", person_text("\u212b ngstr\u00f6m", "name"))


@pytest.mark.parametrize("label", list(REFUSED))
def test_person_text_refuses_invisible_and_control_characters(label: str) -> None:
    with pytest.raises(TextError, match="field `name`"):
        person_text(REFUSED[label], "name")


def test_a_description_keeps_newline_and_tab_only() -> None:
    assert person_text("line one\n\tline two", "description", multiline=True) == (
        "line one\n\tline two"
    )
    for bad in ("a\r\nb", "a\x1bb", "a\u202eb", "a\u200bb", "a\u2028b", "e" + "\u0301" * 5):
        with pytest.raises(TextError):
            person_text(bad, "description", multiline=True)


def test_ordinary_text_of_any_script_passes() -> None:
    for text in (
        "\u1100\u1161",  # a Hangul syllable spelled with conjoining jamo
        "Mi\u0301\u0302\u0303\u0304a",  # four marks on one letter: still allowed
        "\u3164Mia",  # a filler beside visible letters is not a blank name
        "Zo\u00eb",
        "\u041c\u0430\u0448\u0430",
        "\u5c0f\u660e",
        "\u05de\u05d9\u05d4",
        "\U0001f98a fox",
    ):
        assert person_text(text, "name") == unicodedata.normalize("NFC", text)


@pytest.mark.parametrize(
    "value",
    [None, "fox", "owl_2", "a-b", "x" * 64, "https://cdn.example.com/a.png?size=64#x"],
)
def test_avatar_accepts_picture_names_and_https_urls(value: str | None) -> None:
    assert avatar(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "http://example.com/a.png",
        "data:image/png;base64,AAAA",
        "//example.com/a.png",
        "https://",
        "https://exa mple.com/a.png",
        "https://trusted.example@evil.example/a.png",
        "https://example.com/\u00e9.png",
        "Fox",
        "x" * 65,
        "",
        "https://example.com/" + "a" * 2030,
        'https://evil.example/"onerror=alert(1)',
        "https://evil.example/'onerror=alert(1)",
        "https://evil.example/<script>",
        "https://evil.example/a\\b",
        "https://evil.example/a`b",
        "https://evil.example/a\tb",
    ],
)
def test_avatar_refuses_everything_else(value: str) -> None:
    with pytest.raises(TextError, match="field `avatar`"):
        avatar(value)


def test_search_text_is_nfc() -> None:
    assert search_text(DECOMPOSED) == COMPOSED
    assert search_text(None) is None


# --- through the API: children ----------------------------------------------------------


@pytest.mark.parametrize("label", list(REFUSED))
def test_child_name_with_a_refused_character_is_400_naming_it(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]], label: str
) -> None:
    response = client.post("/v1/children", json=_child(REFUSED[label]), headers=auth("bob"))
    assert response.status_code == 400, response.text
    assert _keys(response) == ["name"]
    assert "name" in response.json()["detail"]


def test_child_interest_with_a_refused_character_is_400_naming_it(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    body = _child(interests=["space", "dino\u200bsaurs"])
    response = client.post("/v1/children", json=body, headers=auth("bob"))
    assert response.status_code == 400, response.text
    assert _keys(response) == ["interests[1]"]


def test_child_text_is_stored_in_nfc(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    body = _child(f"Ren{DECOMPOSED[-2:]}e", interests=[DECOMPOSED], avatar="fox")
    created = client.post("/v1/children", json=body, headers=auth("bob"))
    assert created.status_code == 201, created.text
    child = client.get(f"/v1/children/{created.json()['id']}", headers=auth("bob")).json()
    assert child["name"] == "Ren\u00e9e"
    assert child["interests"] == [COMPOSED]
    assert child["avatar"] == "fox"


@pytest.mark.parametrize(
    "value",
    [
        "javascript:alert(1)",
        "http://example.com/a.png",
        "data:text/html,x",
        "Fox",
        'https://evil.example/"onerror=alert(1)',
    ],
)
def test_child_avatar_that_is_no_picture_name_or_https_url_is_400(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]], value: str
) -> None:
    response = client.post("/v1/children", json=_child(avatar=value), headers=auth("bob"))
    assert response.status_code == 400, response.text
    assert _keys(response) == ["avatar"]


def test_child_avatar_https_url_is_kept(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    url = "https://cdn.example.com/avatars/mia.png"
    response = client.post("/v1/children", json=_child(avatar=url), headers=auth("bob"))
    assert response.status_code == 201, response.text
    assert response.json()["avatar"] == url


# --- through the API: projects ----------------------------------------------------------


def test_composed_and_decomposed_name_are_one_project_name_and_one_search(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    tag = uuid.uuid4().hex[:8]
    headers = auth("dave")
    first = client.post("/v1/projects", json={"name": f"{COMPOSED} {tag}"}, headers=headers)
    second = client.post("/v1/projects", json={"name": f"{DECOMPOSED} {tag}"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["name"] == second.json()["name"] == f"{COMPOSED} {tag}"
    for q in (f"{COMPOSED} {tag}", f"{DECOMPOSED} {tag}", f"caf\u00e9 {tag}", f"cafe\u0301 {tag}"):
        page = client.get("/v1/projects", params={"q": q}, headers=headers).json()
        assert page["total"] == 2, (q, page)


@pytest.mark.parametrize("label", list(REFUSED))
def test_project_name_with_a_refused_character_is_400(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]], label: str
) -> None:
    response = client.post("/v1/projects", json={"name": REFUSED[label]}, headers=auth("dave"))
    assert response.status_code == 400, response.text
    assert _keys(response) == ["name"]


def test_project_description_keeps_newlines_and_tabs_but_refuses_the_rest(
    client: TestClient[Litestar], auth: Callable[[str], dict[str, str]]
) -> None:
    headers = auth("dave")
    text = f"Step 1:\n\t{DECOMPOSED}"
    created = client.post(
        "/v1/projects", json={"name": "notes", "description": text}, headers=headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["description"] == f"Step 1:\n\t{COMPOSED}"
    project = f"/v1/projects/{created.json()['id']}"
    for bad in ("a\r\nb", "\x1b[2J", "x\u202ey", "x\u200by"):
        response = client.post(
            "/v1/projects", json={"name": "n", "description": bad}, headers=headers
        )
        assert response.status_code == 400, (bad, response.text)
        assert _keys(response) == ["description"]
        patched = client.patch(project, json={"description": bad}, headers=headers)
        assert patched.status_code == 400, (bad, patched.text)
        assert _keys(patched) == ["description"]
    renamed = client.patch(project, json={"name": f"{DECOMPOSED}!"}, headers=headers)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == f"{COMPOSED}!"
    refused = client.patch(project, json={"name": "a\u2067b"}, headers=headers)
    assert refused.status_code == 400
    assert _keys(refused) == ["name"]
