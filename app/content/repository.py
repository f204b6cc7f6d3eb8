"""Statements for the child-aware content: one per request, ownership check included.

Every statement starts from the `child` CTE, the caller's child or no row: it selects
from `ChildModel`, so app/db adds the owner scope to it like to any other read of the
table. The content is LEFT JOINed to it, so the single round trip tells three cases
apart:

- no row at all: the child does not exist or is not the caller's (404);
- one row of NULLs: the child exists but no item suits it (an empty list);
- otherwise: the items, already filtered by age and ranked.

Ranking: items whose tags overlap the child's interests (lower-cased) first, then a
stable order (by id, or the daily shuffle). The statements are SQLAlchemy expressions
over the catalog models, compiled once (app/db/precompiled.py); values travel as parameters:
`child_id`, `today`, then per statement.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from sqlalchemy import (
    CTE,
    TIMESTAMP,
    Date,
    Integer,
    Select,
    Text,
    bindparam,
    case,
    cast,
    exists,
    extract,
    func,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from app.children.models import ChildModel
from app.content.models import (
    AffirmationModel,
    ChoreModel,
    FlashcardModel,
    OutdoorActivityModel,
    SubjectModel,
)
from app.content.schemas import (
    Affirmation,
    Chore,
    Difficulty,
    Flashcard,
    OutdoorActivity,
    Subject,
)
from app.db.precompiled import PrecompiledRows, PrecompiledSelect
from app.db.repository import QueryRepository
from app.db.scope import OwnerScope

__all__ = ["ContentRepository", "DailyPick", "Missing"]

StructT = TypeVar("StructT", bound=msgspec.Struct)


class Missing(enum.Enum):
    """What a content statement could not find."""

    CHILD = "child"
    SUBJECT = "subject"


def _today() -> Any:
    return bindparam("today", type_=Date)


def _owned_child() -> CTE:
    """`child(id, age, interest_keys)`: the caller's child with this id, or no row.

    MATERIALIZED: age and keys are worked out once, not again for every catalog row.
    """
    interest = func.unnest(ChildModel.interests).column_valued("interest")
    interest_keys = select(func.lower(interest)).scalar_subquery()
    age = cast(
        extract(
            "year",
            func.age(cast(_today(), TIMESTAMP), cast(ChildModel.birthday, TIMESTAMP)),
        ),
        Integer,
    )
    return (
        select(
            ChildModel.id,
            age.label("age"),
            type_coerce(func.array(interest_keys), ARRAY(Text)).label("interest_keys"),
        )
        .where(ChildModel.id == bindparam("child_id", type_=Text))
        .cte("child")
        .prefix_with("MATERIALIZED")
    )


def _item_columns(model: Any, row_type: type[msgspec.Struct]) -> list[Any]:
    return [getattr(model, name) for name in row_type.__struct_fields__]


def _ranked_list(model: Any, row_type: type[msgspec.Struct]) -> Select[Any]:
    """Every item suited to the child's age: interest matches first, then by id."""
    child = _owned_child()
    item = (
        select(
            *_item_columns(model, row_type),
            model.tags.overlap(child.c.interest_keys).label("matched"),
        )
        .where(child.c.age.between(model.min_age, model.max_age))
        .lateral("item")
    )
    return (
        select(*(item.c[name] for name in row_type.__struct_fields__))
        .select_from(child.outerjoin(item, true()))
        .order_by(item.c.matched.desc(), item.c.id)
    )


def _daily_pick(model: Any, row_type: type[msgspec.Struct]) -> Select[Any]:
    """Today's items for the child: `size` items, up to `from_interests` matching.

    The order comes from md5(child id, date, item id): fixed for a child all day, a new
    shuffle the next day, different between children, and nothing is stored. Matching
    items fill at most `from_interests` places, chosen by the same shuffle, so a child
    with only a few matches still sees the rest of the catalog rotate.
    """
    child = _owned_child()
    matched = model.tags.overlap(child.c.interest_keys)
    shuffle = func.md5(child.c.id + "/" + cast(_today(), Text) + "/" + model.id)
    candidates = (
        select(
            *_item_columns(model, row_type),
            matched.label("matched"),
            shuffle.label("shuffle"),
        )
        .select_from(child.join(model, child.c.age.between(model.min_age, model.max_age)))
        .cte("candidates")
    )
    ranked = select(
        candidates,
        func.row_number()
        .over(partition_by=candidates.c.matched, order_by=candidates.c.shuffle)
        .label("place_in_group"),
    ).cte("ranked")
    in_interest_quota = ranked.c.matched & (
        ranked.c.place_in_group <= bindparam("from_interests", type_=Integer)
    )
    picked = (
        select(ranked)
        .order_by(in_interest_quota.desc(), ranked.c.shuffle)
        .limit(bindparam("size", type_=Integer))
        .cte("picked")
    )
    return (
        select(*(picked.c[name] for name in row_type.__struct_fields__))
        .select_from(child.outerjoin(picked, true()))
        .order_by(picked.c.matched.desc(), picked.c.shuffle)
    )


def _flashcards() -> Select[Any]:
    """Cards for the child; `subject_id` and `difficulty` narrow them when not NULL.

    `subject_known` is false only when a subject id was given that names no subject at
    all: 404, not an empty list.
    """
    child = _owned_child()
    subject_id = bindparam("subject_id", type_=Text)
    difficulty = bindparam("difficulty", type_=Text)
    known = select(
        (subject_id.is_(None) | exists().where(SubjectModel.id == subject_id)).label(
            "subject_known"
        )
    ).cte("known")
    card = FlashcardModel
    item = (
        select(
            *_item_columns(card, Flashcard),
            card.tags.overlap(child.c.interest_keys).label("matched"),
            case({"easy": 1, "medium": 2, "hard": 3}, value=card.difficulty).label(
                "difficulty_rank"
            ),
        )
        .where(
            known.c.subject_known,
            child.c.age.between(card.min_age, card.max_age),
            subject_id.is_(None) | (card.subject_id == subject_id),
            difficulty.is_(None) | (card.difficulty == difficulty),
        )
        .lateral("item")
    )
    return (
        select(*(item.c[name] for name in Flashcard.__struct_fields__), known.c.subject_known)
        .select_from(child.join(known, true()).outerjoin(item, true()))
        .order_by(item.c.matched.desc(), item.c.subject_id, item.c.difficulty_rank, item.c.id)
    )


_AFFIRMATIONS = PrecompiledSelect(lambda: _ranked_list(AffirmationModel, Affirmation), Affirmation)
_SUBJECTS = PrecompiledSelect(lambda: _ranked_list(SubjectModel, Subject), Subject)
_OUTDOOR_ACTIVITIES = PrecompiledSelect(
    lambda: _ranked_list(OutdoorActivityModel, OutdoorActivity), OutdoorActivity
)
_DAILY_CHORES = PrecompiledSelect(lambda: _daily_pick(ChoreModel, Chore), Chore)
_DAILY_OUTDOOR_ACTIVITIES = PrecompiledSelect(
    lambda: _daily_pick(OutdoorActivityModel, OutdoorActivity), OutdoorActivity
)
_FLASHCARDS = PrecompiledSelect(_flashcards, Flashcard)


@dataclass(frozen=True, slots=True)
class DailyPick:
    """How many items a daily endpoint returns, and how many may come from interests."""

    size: int
    from_interests: int


def _items(rows: PrecompiledRows[StructT]) -> list[StructT] | Missing:
    if not rows:
        return Missing.CHILD
    # A lone row of NULLs: the child exists, nothing suits it.
    return rows.structs(unless_null="id")


class ContentRepository(QueryRepository):
    """The catalog as one parent's child sees it (scoped to that parent's children)."""

    @classmethod
    def for_parent(cls, session: AsyncSession, owner_sub: str) -> ContentRepository:
        return cls(session=session, scopes={ChildModel: OwnerScope(owner_sub)})

    async def affirmations(self, child_id: str, today: dt.date) -> list[Affirmation] | Missing:
        return _items(await self.run_precompiled(_AFFIRMATIONS, child_id=child_id, today=today))

    async def subjects(self, child_id: str, today: dt.date) -> list[Subject] | Missing:
        return _items(await self.run_precompiled(_SUBJECTS, child_id=child_id, today=today))

    async def outdoor_activities(
        self, child_id: str, today: dt.date
    ) -> list[OutdoorActivity] | Missing:
        return _items(
            await self.run_precompiled(_OUTDOOR_ACTIVITIES, child_id=child_id, today=today)
        )

    async def daily_outdoor_activities(
        self, child_id: str, today: dt.date, pick: DailyPick
    ) -> list[OutdoorActivity] | Missing:
        rows = await self.run_precompiled(
            _DAILY_OUTDOOR_ACTIVITIES,
            child_id=child_id,
            today=today,
            size=pick.size,
            from_interests=pick.from_interests,
        )
        return _items(rows)

    async def daily_chores(
        self, child_id: str, today: dt.date, pick: DailyPick
    ) -> list[Chore] | Missing:
        rows = await self.run_precompiled(
            _DAILY_CHORES,
            child_id=child_id,
            today=today,
            size=pick.size,
            from_interests=pick.from_interests,
        )
        return _items(rows)

    async def flashcards(
        self,
        child_id: str,
        today: dt.date,
        subject_id: str | None,
        difficulty: Difficulty | None,
    ) -> list[Flashcard] | Missing:
        rows = await self.run_precompiled(
            _FLASHCARDS,
            child_id=child_id,
            today=today,
            subject_id=subject_id,
            difficulty=difficulty,
        )
        if not rows:
            return Missing.CHILD
        if not rows.value(rows.records[0], "subject_known"):
            return Missing.SUBJECT
        return rows.structs(unless_null="id")
