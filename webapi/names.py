"""Names as people read them: one spelling per look (NFKC), nothing invisible, look-alikes flagged.

Two names that look the same in a list must be the same text, or say why not. So every name (people's
names and external ids, roster and session names) is stored in Unicode's NFKC form (a full-width
"ｏｂａｍａ" is "obama", the ligature "ﬁ" is "fi"); characters that show nothing (zero-width joiners and
spaces, format and control characters, private-use and unassigned code points, blank fillers) are
refused; and a person's name in which one word mixes scripts that hold look-alike letters ("оbama" with a
Cyrillic "о" beside "obama") is accepted with a warning in the answer, since it displays like another
spelling. Refusing it outright would refuse names no one meant harm with; the admin who created it sees
the warning at once. Whole-script look-alikes (every letter Cyrillic) are not flagged.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from confusable_homoglyphs import categories, confusables

from webapi.validation import BIDI_CONTROLS

# Format (Cf: ZWJ, ZWNJ, ZWSP, BOM, soft hyphen …), control, surrogate, private use, unassigned, and line
# and paragraph separators: none of them shows, so a name holding one reads like a name without it.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Cs", "Co", "Cn", "Zl", "Zp"})
# Letters drawn as nothing: the Hangul fillers, the Braille blank, the Mongolian vowel separator.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
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
    invisible = [
        char for char in text if char in _BLANK_LETTERS or unicodedata.category(char) in _INVISIBLE_CATEGORIES
    ]
    # NUL and the bidirectional controls keep their own messages (webapi.validation.storable_text).
    invisible = [char for char in invisible if char != "\x00" and char not in BIDI_CONTROLS]
    if invisible:
        shown = ", ".join(sorted({f"U+{ord(char):04X}" for char in invisible}))
        raise ValueError(
            f"names may not contain invisible characters ({shown}): what is shown must be the name"
        )
    return text


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
