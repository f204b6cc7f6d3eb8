"""Checks the built-in content catalog under db/catalog/ before any migration loads it.

Pure file checks (no database): the data migration upserts these rows by id, and the
content endpoints filter by age and rank by tags, so shape, ids, ages and tags are
validated here where a mistake is cheapest to spot.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CATALOG_DIR = Path(__file__).resolve().parent.parent / "db" / "catalog"

Item = dict[str, Any]

MIN_AGE, MAX_AGE = 2, 17
# Ages for which the API must always have a useful amount of content.
CORE_AGES = range(3, 13)
OLDER_AGES = range(13, 18)
DIFFICULTIES = ("easy", "medium", "hard")
CARDS_PER_DIFFICULTY = 10
BANNED_WORDS = ("lorem", "ipsum", "todo", "placeholder", "xxx", "tbd", "fixme")

FIELDS: dict[str, set[str]] = {
    "affirmations": {"id", "text", "min_age", "max_age", "tags"},
    "subjects": {"id", "name", "min_age", "max_age", "tags"},
    "flashcards": {
        "id",
        "subject_id",
        "difficulty",
        "front",
        "back",
        "min_age",
        "max_age",
        "tags",
    },
    "chores": {"id", "title", "description", "min_age", "max_age", "tags"},
    "outdoor_activities": {"id", "title", "description", "min_age", "max_age", "tags"},
}

MIN_COUNTS = {
    "affirmations": 64,
    "subjects": 8,
    "flashcards": 240,
    "chores": 40,
    "outdoor_activities": 40,
}

ID_PATTERNS = {
    "affirmations": re.compile(r"aff-\d{3}"),
    "subjects": re.compile(r"[a-z]{2,20}"),
    "flashcards": re.compile(r"card-([a-z]{2,20})-\d{3}"),
    "chores": re.compile(r"chore-\d{3}"),
    "outdoor_activities": re.compile(r"out-\d{3}"),
}

# The field that holds each item's main text; it must be unique within its file.
MAIN_TEXT = {
    "affirmations": "text",
    "subjects": "name",
    "flashcards": "front",
    "chores": "title",
    "outdoor_activities": "title",
}

# Minimum items every child aged 3..12 must be offered, per file.
PER_AGE_MINIMUM = {"affirmations": 10, "chores": 8, "outdoor_activities": 8}
SUBJECTS_PER_AGE = 5
CARDS_PER_AGE_SUBJECT_DIFFICULTY = 3
# Toddler and big-kid content must be mostly distinct, so personalisation is visible.
MAX_SHARED_BETWEEN_AGE_3_AND_12 = 8


def load(name: str) -> list[Item]:
    raw = json.loads((CATALOG_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert isinstance(raw, list), f"{name}.json must hold a JSON array"
    for item in raw:
        assert isinstance(item, dict), f"{name}.json must hold objects, got {item!r}"
    return raw


def load_vocabulary() -> set[str]:
    raw = json.loads((CATALOG_DIR / "tags.json").read_text(encoding="utf-8"))
    assert isinstance(raw, list)
    assert all(isinstance(tag, str) for tag in raw)
    return set(raw)


def suits(item: Item, age: int) -> bool:
    return bool(item["min_age"] <= age <= item["max_age"])


def ids_for_age(items: list[Item], age: int) -> set[str]:
    return {item["id"] for item in items if suits(item, age)}


def text_fields(item: Item) -> list[str]:
    return [value for key, value in item.items() if key != "id" and isinstance(value, str)]


@pytest.fixture(scope="module")
def catalog() -> dict[str, list[Item]]:
    return {name: load(name) for name in FIELDS}


@pytest.fixture(scope="module")
def vocabulary() -> set[str]:
    return load_vocabulary()


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_files_are_utf8_two_space_json(name: str) -> None:
    text = (CATALOG_DIR / f"{name}.json").read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), ensure_ascii=False, indent=2) + "\n", (
        f"{name}.json is not formatted with 2-space indent and a trailing newline"
    )


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_item_counts(catalog: dict[str, list[Item]], name: str) -> None:
    assert len(catalog[name]) >= MIN_COUNTS[name]


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_fields_are_exactly_the_documented_set(catalog: dict[str, list[Item]], name: str) -> None:
    for item in catalog[name]:
        assert set(item) == FIELDS[name], f"{name} {item.get('id')!r}: fields {sorted(item)}"


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_ids_are_unique_and_well_formed(catalog: dict[str, list[Item]], name: str) -> None:
    ids = [item["id"] for item in catalog[name]]
    duplicates = [item_id for item_id, count in Counter(ids).items() if count > 1]
    assert not duplicates, f"{name}: duplicate ids {duplicates}"
    for item_id in ids:
        assert isinstance(item_id, str)
        assert ID_PATTERNS[name].fullmatch(item_id), f"{name}: bad id {item_id!r}"


def test_flashcard_ids_carry_their_subject(catalog: dict[str, list[Item]]) -> None:
    for card in catalog["flashcards"]:
        match = ID_PATTERNS["flashcards"].fullmatch(card["id"])
        assert match is not None
        assert match.group(1) == card["subject_id"], card["id"]


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_age_ranges_are_whole_years_within_bounds(
    catalog: dict[str, list[Item]], name: str
) -> None:
    for item in catalog[name]:
        low, high = item["min_age"], item["max_age"]
        # bool is an int subclass; true/false in JSON would be a typo, not an age.
        assert type(low) is int, item["id"]
        assert type(high) is int, item["id"]
        assert MIN_AGE <= low <= high <= MAX_AGE, f"{item['id']}: ages {low}-{high}"


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_tags_come_from_the_vocabulary(
    catalog: dict[str, list[Item]], vocabulary: set[str], name: str
) -> None:
    for item in catalog[name]:
        tags = item["tags"]
        assert isinstance(tags, list), item["id"]
        assert 1 <= len(tags) <= 5, f"{item['id']}: {len(tags)} tags"
        assert len(set(tags)) == len(tags), f"{item['id']}: repeated tag"
        unknown = set(tags) - vocabulary
        assert not unknown, f"{item['id']}: tags not in tags.json: {sorted(unknown)}"


def test_vocabulary_is_small_lowercase_and_used(
    catalog: dict[str, list[Item]], vocabulary: set[str]
) -> None:
    assert 25 <= len(vocabulary) <= 35
    for tag in vocabulary:
        assert re.fullmatch(r"[a-z]+", tag), f"tag {tag!r} must be one lowercase word"
    used = {tag for items in catalog.values() for item in items for tag in item["tags"]}
    assert vocabulary == used, f"unused tags: {sorted(vocabulary - used)}"


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_texts_are_non_empty_unique_and_not_filler(
    catalog: dict[str, list[Item]], name: str
) -> None:
    main_texts: list[str] = []
    for item in catalog[name]:
        for value in text_fields(item):
            assert value, f"{item['id']}: blank text"
            assert value.strip() == value, f"{item['id']}: untrimmed text {value!r}"
            words = set(re.findall(r"[a-z]+", value.lower()))
            banned = words.intersection(BANNED_WORDS)
            assert not banned, f"{item['id']}: filler words {sorted(banned)}"
        main_texts.append(item[MAIN_TEXT[name]].casefold())
    duplicates = [text for text, count in Counter(main_texts).items() if count > 1]
    assert not duplicates, f"{name}: duplicate texts {duplicates}"


@pytest.mark.parametrize("name", ["chores", "outdoor_activities"])
def test_descriptions_are_short(catalog: dict[str, list[Item]], name: str) -> None:
    for item in catalog[name]:
        description: str = item["description"]
        sentences = [part for part in re.split(r"[.!?](?:\s|$)", description) if part.strip()]
        assert 1 <= len(sentences) <= 2, f"{item['id']}: {len(sentences)} sentences"
        assert description.endswith((".", "!")), item["id"]
        descriptions = [other["description"] for other in catalog[name]]
        assert descriptions.count(description) == 1, f"{item['id']}: duplicate description"


def test_every_flashcard_has_a_known_subject_and_difficulty(
    catalog: dict[str, list[Item]],
) -> None:
    subject_ids = {subject["id"] for subject in catalog["subjects"]}
    for card in catalog["flashcards"]:
        assert card["subject_id"] in subject_ids, card["id"]
        assert card["difficulty"] in DIFFICULTIES, card["id"]
        assert card["back"], card["id"]


def test_every_subject_has_enough_cards_of_each_difficulty(
    catalog: dict[str, list[Item]],
) -> None:
    counts = Counter((card["subject_id"], card["difficulty"]) for card in catalog["flashcards"])
    for subject in catalog["subjects"]:
        for difficulty in DIFFICULTIES:
            found = counts[(subject["id"], difficulty)]
            assert found >= CARDS_PER_DIFFICULTY, f"{subject['id']}/{difficulty}: {found}"


def test_cards_fit_inside_their_subject_age_range(catalog: dict[str, list[Item]]) -> None:
    subjects = {subject["id"]: subject for subject in catalog["subjects"]}
    for card in catalog["flashcards"]:
        subject = subjects[card["subject_id"]]
        assert subject["min_age"] <= card["min_age"], card["id"]
        assert card["max_age"] <= subject["max_age"], card["id"]


@pytest.mark.parametrize("age", CORE_AGES)
@pytest.mark.parametrize("name", sorted(PER_AGE_MINIMUM))
def test_every_core_age_gets_enough_items(
    catalog: dict[str, list[Item]], name: str, age: int
) -> None:
    found = len(ids_for_age(catalog[name], age))
    assert found >= PER_AGE_MINIMUM[name], f"{name} for age {age}: only {found}"


@pytest.mark.parametrize("age", CORE_AGES)
def test_every_core_age_gets_subjects_with_cards_of_each_difficulty(
    catalog: dict[str, list[Item]], age: int
) -> None:
    subjects = [subject for subject in catalog["subjects"] if suits(subject, age)]
    assert len(subjects) >= SUBJECTS_PER_AGE, f"age {age}: {len(subjects)} subjects"
    # Every subject offered at this age must be usable at every difficulty.
    for subject in subjects:
        for difficulty in DIFFICULTIES:
            found = sum(
                1
                for card in catalog["flashcards"]
                if card["subject_id"] == subject["id"]
                and card["difficulty"] == difficulty
                and suits(card, age)
            )
            assert found >= CARDS_PER_AGE_SUBJECT_DIFFICULTY, (
                f"age {age}, {subject['id']}/{difficulty}: only {found} cards"
            )


@pytest.mark.parametrize("age", OLDER_AGES)
@pytest.mark.parametrize("name", sorted(FIELDS))
def test_teenagers_still_get_items(catalog: dict[str, list[Item]], name: str, age: int) -> None:
    assert ids_for_age(catalog[name], age), f"{name}: nothing for age {age}"


@pytest.mark.parametrize("name", ["affirmations", "chores", "outdoor_activities"])
def test_toddlers_and_big_kids_get_mostly_different_items(
    catalog: dict[str, list[Item]], name: str
) -> None:
    toddler = ids_for_age(catalog[name], 3)
    big_kid = ids_for_age(catalog[name], 12)
    shared = toddler & big_kid
    assert len(shared) <= MAX_SHARED_BETWEEN_AGE_3_AND_12, f"{name}: shared {sorted(shared)}"
    assert toddler - big_kid, f"{name}: nothing just for toddlers"
    assert big_kid - toddler, f"{name}: nothing just for big kids"


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("affirmations", lambda item: item["text"].endswith((".", "!"))),
        # Fronts are always asked as a question, so the card reads the same on every client.
        ("flashcards", lambda item: item["front"].endswith("?")),
    ],
)
def test_sentences_are_punctuated(
    catalog: dict[str, list[Item]], name: str, check: Callable[[Item], bool]
) -> None:
    for item in catalog[name]:
        assert check(item), f"{item['id']}: missing final punctuation"
