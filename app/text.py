"""Rules for text a person typed (README, "API reference"), enforced once for every such field.

- Stored in Unicode NFC, so "Café" typed with a composed é and with e + combining accent
  is one name (and one search term), not two that look the same.
- Refused with 400 naming the field: control characters (a description may keep newline
  and tab), bidirectional controls (which can make a name display as something else),
  zero-width and other invisible formatting characters (Unicode category Cf), and
  unpaired surrogates (not text; PostgreSQL cannot store them), the line and paragraph
  separators U+2028/U+2029 (invisible line breaks), and more than
  `MAX_COMBINING_MARKS` combining marks in a row on one character ("Zalgo" text that
  spills over the lines around it).
- A one-line text (a name, an interest) needs at least one visible character: one made
  only of characters that render blank (U+3164 HANGUL FILLER, U+115F/U+1160, U+FFA0,
  U+2800 BRAILLE PATTERN BLANK, spaces, lone combining marks) is refused.
- An avatar is null, a built-in picture name, or an https:// URL; nothing that a browser
  would run (`javascript:`) or fetch insecurely, and no character that could end an HTML
  attribute or tag a client pastes it into (quotes, `<`, `>`, backslash, backtick, spaces).

Schemas call these from `__post_init__`, or subclass `TypedTextBody`, which does it for
every text field; msgspec turns the ValueError into a validation error, and
app/http_input.py names the field from the message. `line_rules`/`paragraph_rules` give a
text field its length limits and the description that tells clients these rules.
`CONTROL_CHARACTER` is the one definition of a control character, for paths
(app/http_input.py) as for text.
"""

from __future__ import annotations

import re
import unicodedata
from typing import ClassVar
from urllib.parse import urlsplit

import msgspec
from msgspec.structs import force_setattr

__all__ = [
    "AVATAR_NAME_PATTERN",
    "AVATAR_URL_MAX_LENGTH",
    "CONTROL_CHARACTER",
    "MAX_COMBINING_MARKS",
    "TextError",
    "TypedTextBody",
    "avatar",
    "line_rules",
    "paragraph_rules",
    "person_text",
    "person_texts",
    "search_text",
]

AVATAR_NAME_PATTERN = re.compile(r"^[a-z0-9_-]{1,64}$")
AVATAR_URL_MAX_LENGTH = 2048
# Printable ASCII after the scheme: a URL with spaces or raw non-ASCII is not one to
# hand a browser as is.
_AVATAR_URL = re.compile(r"^https://[!-~]+$")
# Would end an attribute or a tag wherever a client puts the URL unescaped.
_AVATAR_UNSAFE = re.compile(r"[\s\"'<>\\`]")
MAX_COMBINING_MARKS = 4
# Letters and symbols that render as nothing at all.
_BLANK_FILLERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_LINE_SEPARATORS = frozenset("\u2028\u2029")
_COMBINING = frozenset({"Mn", "Me"})
_INVISIBLE_CATEGORIES = frozenset({"Mn", "Me", "Zs", "Zl", "Zp", "Cc", "Cf"})

# C0 controls and DEL (C1 controls are caught with the other non-ASCII ones below).
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
_ASCII_CONTROL_EXCEPT_NEWLINE_TAB = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


class TextError(ValueError):
    """Text that breaks the rules; the message names the field (see app/errors.py)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"invalid text in field `{field}`: {problem}")
        self.field = field


def _describe(char: str) -> str:
    code = f"U+{ord(char):04X}"
    if char in _LINE_SEPARATORS:
        return f"must not contain line or paragraph separators ({code})"
    if char in _BIDI_CONTROLS:
        return f"must not contain bidirectional control characters ({code})"
    category = unicodedata.category(char)
    if category == "Cc":
        return f"must not contain control characters ({code})"
    if category == "Cs":
        return f"must not contain unpaired surrogates ({code})"
    return f"must not contain zero-width or invisible formatting characters ({code})"


def _refused(value: str, *, multiline: bool) -> str | None:
    """The first refused character of `value`, if any."""
    controls = _ASCII_CONTROL_EXCEPT_NEWLINE_TAB if multiline else CONTROL_CHARACTER
    found = controls.search(value)
    if found is not None:
        return found.group()
    if value.isascii():
        return None
    for char in value:
        # Cc: C0/C1 controls; Cf: format characters (bidi controls, zero-width space and
        # joiners, word joiner, BOM, soft hyphen, tag characters); Cs: lone surrogates.
        if ord(char) >= 0x80 and (
            unicodedata.category(char) in ("Cc", "Cf", "Cs") or char in _LINE_SEPARATORS
        ):
            return char
    return None


def _too_many_marks(value: str) -> bool:
    """Whether more than MAX_COMBINING_MARKS combining marks follow one another."""
    run = 0
    for char in value:
        if ord(char) >= 0x300 and unicodedata.category(char) in _COMBINING:
            run += 1
            if run > MAX_COMBINING_MARKS:
                return True
        else:
            run = 0
    return False


def _visible(char: str) -> bool:
    if char.isascii():
        return not char.isspace() and char.isprintable()
    return char not in _BLANK_FILLERS and unicodedata.category(char) not in _INVISIBLE_CATEGORIES


def person_text(value: str, field: str, *, multiline: bool = False) -> str:
    """`value` in NFC, or TextError naming `field` when it holds a refused character.

    `multiline` (descriptions) lets newline and tab through, and may be blank.
    """
    bad = _refused(value, multiline=multiline)
    if bad is not None:
        raise TextError(field, _describe(bad))
    if not value.isascii():
        if _too_many_marks(value):
            raise TextError(
                field, f"at most {MAX_COMBINING_MARKS} combining marks may follow one character"
            )
        # Blank or empty one-line text is left to the field's own length rule.
        if not multiline and value.strip() and not any(_visible(char) for char in value):
            raise TextError(field, "must contain at least one visible character")
    if value.isascii() or unicodedata.is_normalized("NFC", value):
        return value
    return unicodedata.normalize("NFC", value)


def person_texts(values: list[str], field: str) -> list[str]:
    """Each item through `person_text`, named `field[index]`."""
    return [person_text(value, f"{field}[{index}]") for index, value in enumerate(values)]


def avatar(value: str | None, field: str = "avatar") -> str | None:
    """None, a built-in picture name (1-64 of a-z 0-9 _ -) or an https:// URL of at most
    2,048 characters; TextError otherwise."""
    if value is None or AVATAR_NAME_PATTERN.match(value):
        return value
    if len(value) > AVATAR_URL_MAX_LENGTH:
        raise TextError(field, f"a URL may have at most {AVATAR_URL_MAX_LENGTH} characters")
    if value.startswith("https://") and (_AVATAR_UNSAFE.search(value) or not value.isprintable()):
        raise TextError(field, "a URL must not contain quotes, <, >, \\, ` or spaces")
    if _AVATAR_URL.match(value):
        parts = urlsplit(value)
        # No credentials: "https://trusted.example@elsewhere.example/" points elsewhere.
        if parts.hostname and "@" not in parts.netloc:
            return value
    raise TextError(field, "must be null, a picture name (1-64 of a-z 0-9 _ -) or an https:// URL")


def search_text(value: str | None) -> str | None:
    """A search term in NFC, so it matches what `person_text` stored."""
    if value is None or value.isascii():
        return value
    return unicodedata.normalize("NFC", value)


def line_rules(max_length: int) -> msgspec.Meta:
    """One line of 1-`max_length` characters, not all blank (for `Annotated[str, ...]`)."""
    return msgspec.Meta(
        max_length=max_length,
        pattern=r"\S",
        description=f"1-{max_length} characters, not all blank; stored in Unicode NFC; no "
        "control, bidirectional or zero-width characters",
    )


def paragraph_rules(max_length: int) -> msgspec.Meta:
    """Up to `max_length` characters where newline and tab are allowed."""
    return msgspec.Meta(
        max_length=max_length,
        description=f"At most {max_length} characters; stored in Unicode NFC; newline and "
        "tab allowed, other control, bidirectional and zero-width characters not",
    )


class TypedTextBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A request body whose text fields a person typed: each string field goes through
    `person_text` (fields named in `multiline` keep newlines and tabs); unknown fields
    are refused. Fields left `msgspec.UNSET` (a PATCH) or None are left alone."""

    multiline: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, str):
                text = person_text(value, name, multiline=name in self.multiline)
                force_setattr(self, name, text)
