"""`scripts/seed` against a live API on a database of its own: sample children and
projects for the four dev users, loaded through the API, twice without duplicates."""

from __future__ import annotations

import io
from collections.abc import Iterator

import devstack
import httpx
import pytest
from seed import SAMPLES, seed

from tests.support.databases import private_database
from tests.support.processes import running_api

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with private_database("seed") as url, running_api({"DATABASE_URL": url}) as base_url:
        yield base_url


def _get(api: str, issuer: devstack.IssuerInfo, user: str, path: str) -> object:
    response = httpx.get(f"{api}{path}", headers={"Authorization": f"Bearer {issuer.token(user)}"})
    response.raise_for_status()
    return response.json()


def test_seed_loads_every_user_once(api: str, issuer: devstack.IssuerInfo) -> None:
    first = seed(api, issuer.issuer, out=io.StringIO())
    assert first["alice"] == {"children": 2, "projects": 3}
    assert first["dave"] == {"children": 1, "projects": 1}
    again = seed(api, issuer.issuer, out=io.StringIO())
    assert all(counts == {"children": 0, "projects": 0} for counts in again.values())

    for user, sample in SAMPLES.items():
        children = _get(api, issuer, user, "/v1/children")
        assert isinstance(children, list)
        assert sorted(c["id"] for c in children) == sorted(c["id"] for c in sample.children)
    # Tenants: alice and bob (acme) see each other's projects; carol (globex) sees hers.
    acme = _get(api, issuer, "bob", "/v1/projects?limit=100")
    assert isinstance(acme, dict)
    assert acme["total"] == len(SAMPLES["alice"].projects) + len(SAMPLES["bob"].projects)
    globex = _get(api, issuer, "carol", "/v1/projects?limit=100")
    assert isinstance(globex, dict)
    assert {p["name"] for p in globex["items"]} == {p["name"] for p in SAMPLES["carol"].projects}
