"""Names as people read them: one spelling per look (NFKC), nothing invisible, look-alikes flagged.

Two names that look the same in a list must be the same text, or say why not. So every name (people's
names and external ids, roster and session names) is stored in Unicode's NFKC form (a full-width
"ｏｂａｍａ" is "obama", the ligature "ﬁ" is "fi"); characters that show nothing (``INVISIBLE``: zero-width
joiners and spaces, the other default-ignorable code points, controls, line and paragraph separators,
private use, blank fillers) are refused; and a person's name in which one word mixes
scripts that hold look-alike letters ("оbama" with a Cyrillic "о" beside "obama") is accepted with a
warning in the answer, since it displays like another spelling. Refusing it outright would refuse names
no one meant harm with; the admin who created it sees the warning at once. Whole-script look-alikes
(every letter Cyrillic) are not flagged; unassigned code points show as a box, so they pass.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from confusable_homoglyphs import categories, confusables

# What shows nothing, as code point ranges: Unicode's Default_Ignorable_Code_Point (soft hyphen, zero-width
# space/joiners, bidi marks and controls, word joiner, variation selectors, BOM, tags …), C0 and C1
# controls, the line and paragraph separators, private use, and letters drawn blank (Hangul fillers, the
# Braille blank). No surrogates: a pattern holding them compiles in no Unicode regex engine. One table
# serves the check and the OpenAPI pattern (``text_pattern``).
INVISIBLE: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F),
    (0x007F, 0x009F),
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x206F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xE000, 0xF8FF),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFFB),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
    (0xF0000, 0x10FFFF),
)
# Bidirectional controls reorder what a name shows: "x\u202eevil" displays as "xlive". Refused with a
# message of their own (webapi.validation.storable_text), as NUL is.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Scripts a single word legitimately mixes (Japanese, Korean, Chinese with bopomofo).
_WRITING_SYSTEMS = (
    frozenset({"HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"HAN", "HANGUL"}),
    frozenset({"HAN", "BOPOMOFO"}),
)


def normalised_name(value: Any) -> Any:
    """A pydantic ``before`` validator: NFKC form, refusing characters that show nothing.

    It runs before the length limits, so they count what is stored. Anything but text passes unchanged
    (the field's own type check refuses it).
    """
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFKC", value)
    # NUL and the bidirectional controls keep their own messages (webapi.validation.storable_text).
    invisible = {
        char for char in text if _is_invisible(char) and char != "\x00" and char not in BIDI_CONTROLS
    }
    if invisible:
        shown = ", ".join(sorted(f"U+{ord(char):04X}" for char in invisible))
        raise ValueError(
            f"names may not contain invisible characters ({shown}): what is shown must be the name"
        )
    return text


def _is_invisible(char: str) -> bool:
    point = ord(char)
    return any(low <= point <= high for low, high in INVISIBLE)


def text_pattern(at_least_one_visible: bool) -> str:
    """The JSON Schema pattern of a name (no ``INVISIBLE`` character; optionally one non-space one).

    BMP ranges are written ``\\uXXXX`` (ECMA 262 and Python read them alike); astral ones as the
    characters themselves, which both read in a class under Unicode semantics.
    """

    def bound(point: int) -> str:
        return f"\\u{point:04X}" if point <= 0xFFFF else chr(point)

    ranges = "".join(bound(low) if low == high else f"{bound(low)}-{bound(high)}" for low, high in INVISIBLE)
    if not at_least_one_visible:
        return f"^[^{ranges}]*$"
    return f"^[^{ranges}]*[^\\s{ranges}][^{ranges}]*$"


def lookalike_warnings(field: str, text: str | None) -> list[dict[str, str]]:
    """A warning per word of ``text`` that mixes scripts with look-alike letters (empty for most names)."""
    warnings = []
    for word in (text or "").split():
        scripts = categories.unique_aliases(word) - {"COMMON", "INHERITED"}
        if len(scripts) < 2 or any(scripts <= system for system in _WRITING_SYSTEMS):
            continue
        if confusables.is_dangerous(word):
            warnings.append(
                {
                    "code": "mixed_script",
                    "message": f"{field}: the word {word!r} mixes {' and '.join(sorted(scripts)).lower()} "
                    "letters that look alike, so it may display like another spelling",
                }
            )
    return warnings
