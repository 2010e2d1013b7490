"""Normalisation of names and postcodes, and American Soundex (extracts.md §2)."""

from __future__ import annotations

import re
import unicodedata

_NOT_LETTER = re.compile(r"[^A-Z]+")


def normalise_name(name: str | None) -> str | None:
    """NFKD, drop combining marks, upper-case, non A–Z to space, collapse, trim; None when empty."""
    if name is None:
        return None
    decomposed = unicodedata.normalize("NFKD", str(name))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    normal = _NOT_LETTER.sub(" ", stripped.upper()).strip()
    return normal or None


_SOUNDEX_CODES = {
    **dict.fromkeys("BFPV", "1"),
    **dict.fromkeys("CGJKQSXZ", "2"),
    **dict.fromkeys("DT", "3"),
    "L": "4",
    **dict.fromkeys("MN", "5"),
    "R": "6",
}


def soundex(normalised: str) -> str:
    """American Soundex of a normalised name with its spaces removed.

    H and W do not separate letters of the same code; vowels (and Y) do. The first letter's own
    code counts for that rule, so PFISTER is P236, not P123.
    """
    letters = normalised.replace(" ", "")
    if not letters:
        raise ValueError("soundex of an empty name")
    first = letters[0]
    digits: list[str] = []
    previous = _SOUNDEX_CODES.get(first, "")
    for ch in letters[1:]:
        code = _SOUNDEX_CODES.get(ch)
        if code is None:
            if ch not in "HW":
                previous = ""  # a vowel separates two letters of the same code
            continue
        if code != previous:
            digits.append(code)
            if len(digits) == 3:
                break
        previous = code
    return (first + "".join(digits)).ljust(4, "0")


_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})$")
_DISTRICT = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")


def postcode_district(postcode: str | None) -> str | None:
    """The outward code of a full UK postcode (or of a bare district); None when unusable."""
    if postcode is None:
        return None
    compact = re.sub(r"\s+", " ", str(postcode).strip().upper())
    if not compact:
        return None
    m = _POSTCODE.match(compact) or _POSTCODE.match(compact.replace(" ", ""))
    if m:
        return m.group(1)
    if _DISTRICT.match(compact):
        return compact
    return None


_SEX = {"M": "M", "MALE": "M", "1": "M", "F": "F", "FEMALE": "F", "2": "F"}


def normalise_sex(value: str | None) -> str:
    if value is None:
        return "U"
    return _SEX.get(str(value).strip().upper(), "U")
