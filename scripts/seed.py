"""`scripts/seed`: sample children and projects for the dev users, through the API.

usage: scripts/seed [--api URL] [--issuer URL]

Signs in as alice, bob, carol and dave with the password grant (the dev issuer's, or
compose's Keycloak: the password is the user name) and calls the API like any client:
children are upserted by fixed ids and projects created when none of that name is
visible yet, so running it twice changes nothing. `--issuer` defaults to KEYCLOAK_ISSUER
from the environment or from the file ENV_FILE names (scripts/dev writes
.devdata/dev.env); `scripts/dev --seed` runs it once the stack is up.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID = "app-spa"


@dataclass(frozen=True)
class Sample:
    children: list[dict[str, Any]] = field(default_factory=list)
    projects: list[dict[str, str]] = field(default_factory=list)


SAMPLES: dict[str, Sample] = {
    "alice": Sample(
        children=[
            {
                "id": "mia",
                "name": "Mia",
                "birthday": "2018-04-12",
                "interests": ["dinosaurs", "drawing"],
                "avatar": "fox",
            },
            {
                "id": "leo",
                "name": "Leo",
                "birthday": "2015-09-30",
                "interests": ["space", "football"],
                "avatar": "owl",
            },
        ],
        projects=[
            {"name": "Garden planner", "description": "Which vegetables go where this spring."},
            {"name": "Reading club", "description": "Books for the summer holidays."},
            {"name": "Science fair", "description": "A volcano that really fizzes."},
        ],
    ),
    "bob": Sample(
        children=[
            {
                "id": "noah",
                "name": "Noah",
                "birthday": "2019-01-20",
                "interests": ["trains"],
                "avatar": "bear",
            },
        ],
        projects=[{"name": "Birthday party", "description": "Games, cake and a treasure hunt."}],
    ),
    "carol": Sample(
        children=[
            {
                "id": "emma",
                "name": "Emma",
                "birthday": "2013-06-05",
                "interests": ["music", "ocean"],
            },
            {"id": "sam", "name": "Sam", "birthday": "2016-11-18", "interests": ["cooking"]},
        ],
        projects=[
            {"name": "Family cookbook", "description": "Recipes the children can help with."},
            {"name": "Bird watching", "description": "Every bird seen from the kitchen window."},
        ],
    ),
    "dave": Sample(
        children=[
            {
                "id": "zoe",
                "name": "Zoe",
                "birthday": "2020-02-29",
                "interests": ["animals", "dancing"],
            },
        ],
        projects=[{"name": "Tidy-up chart", "description": "Who puts away what, and when."}],
    ),
}


def _env_file_value(name: str) -> str:
    path = Path(os.environ.get("ENV_FILE") or REPO_ROOT / ".devdata" / "dev.env")
    if not path.is_file():
        return ""
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == name:
            return value.strip().strip("'\"")
    return ""


def access_token(issuer: str, username: str) -> str:
    response = httpx.post(
        f"{issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": CLIENT_ID,
            "username": username,
            "password": username,
            "scope": "openid",
        },
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def seed(api: str, issuer: str, out: Any = sys.stdout) -> dict[str, dict[str, int]]:
    """Load the samples; returns what was created per user."""
    created: dict[str, dict[str, int]] = {}
    for username, sample in SAMPLES.items():
        headers = {"Authorization": f"Bearer {access_token(issuer, username)}"}
        counts = {"children": 0, "projects": 0}
        with httpx.Client(base_url=api, headers=headers, timeout=10) as client:
            for child in sample.children:
                response = client.post("/v1/children", json=child)
                response.raise_for_status()
                counts["children"] += response.status_code == 201
            for project in sample.projects:
                found = client.get("/v1/projects", params={"q": project["name"], "limit": 100})
                found.raise_for_status()
                if any(item["name"] == project["name"] for item in found.json()["items"]):
                    continue
                client.post("/v1/projects", json=project).raise_for_status()
                counts["projects"] += 1
        created[username] = counts
        print(
            f"seed: {username}: {len(sample.children)} children ({counts['children']} new), "
            f"{len(sample.projects)} projects ({counts['projects']} new)",
            file=out,
            flush=True,
        )
    return created


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/seed", description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:8000", help="the API's base URL")
    parser.add_argument(
        "--issuer",
        default=os.environ.get("KEYCLOAK_ISSUER") or _env_file_value("KEYCLOAK_ISSUER"),
        help="the token issuer (default: KEYCLOAK_ISSUER, or the one in ENV_FILE)",
    )
    args = parser.parse_args(argv)
    if not args.issuer:
        parser.error("no issuer: pass --issuer, or run scripts/dev first (it writes ENV_FILE)")
    try:
        seed(args.api.rstrip("/"), args.issuer.rstrip("/"))
    except httpx.HTTPError as error:
        print(f"seed: failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
