"""Field normalisation for imported leads: dates, names, emails, postcodes, free text.

Each normaliser is a small callable with a bounded cache keyed by the raw string: lists repeat
first names, dates and postcode areas endlessly, so most rows cost a dict lookup.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BoundedCache(Generic[T]):
    """A memo for a pure function of a string; cleared when full so memory stays flat."""

    def __init__(self, fn: Callable[[str], T], size: int = 50_000) -> None:
        self._fn = fn
        self._size = size
        self._data: dict[str, T] = {}

    def __call__(self, raw: str) -> T:
        try:
            return self._data[raw]
        except KeyError:
            pass
        value = self._fn(raw)
        if len(self._data) >= self._size:
            self._data.clear()
        self._data[raw] = value
        return value


# ---- dates ----------------------------------------------------------------------------------
_MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
# An optional time of day after a date (ignored: the field is a date).
_TIME = (
    r"(?:[ T]+\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:[AaPp]\.?[Mm]\.?)?"
    r"\s*(?:Z|[+-]\d{2}:?\d{2}|UTC|GMT)?)?"
)
_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})" + _TIME)
_NUMERIC = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})" + _TIME)
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DAY_MONTH_NAME = re.compile(
    r"(?:[A-Za-z]+,?\s+)?(\d{1,2})(?:st|nd|rd|th)?[\s\-/.]+([A-Za-z]{3,9})\.?,?[\s\-/.]+(\d{4}|\d{2})"
    + _TIME
)
_MONTH_NAME_DAY = re.compile(
    r"(?:[A-Za-z]+,?\s+)?([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}|\d{2})" + _TIME
)
_EXCEL_EPOCH = dt.date(1899, 12, 30)


def _year(text: str) -> int:
    y = int(text)
    if len(text) == 2:
        # Two-digit years: enquiries are in the past, so "25" is 2025 and "87" is 1987.
        pivot = dt.date.today().year % 100 + 1
        y += 2000 if y <= pivot else 1900
    return y


def _make(y: int, m: int, d: int) -> str | None:
    if not 1900 <= y <= 2100:
        return None
    try:
        return dt.date(y, m, d).isoformat()
    except ValueError:
        return None


def parse_date(raw: str, *, month_first: bool = False) -> str | None:
    """ISO 8601 date (YYYY-MM-DD) for the common ways a date is written, or None.

    ISO dates, dd/mm/yyyy and mm/dd/yyyy (with -, / or . and 2- or 4-digit years), month
    names in either order, yyyymmdd and Excel serial numbers. A numeric date whose day and
    month could swap (03/04/2024) is read month first only when `month_first` (US region).
    A time of day, if present, is ignored: the field is a date.
    """
    s = raw.strip()
    if not s:
        return None
    if m := _ISO.fullmatch(s):
        return _make(int(m[1]), int(m[2]), int(m[3]))
    if m := _NUMERIC.fullmatch(s):
        a, b, y = int(m[1]), int(m[2]), _year(m[3])
        if a > 12 >= b:
            return _make(y, b, a)
        if b > 12 >= a:
            return _make(y, a, b)
        return _make(y, a, b) if month_first else _make(y, b, a)
    if m := _DAY_MONTH_NAME.fullmatch(s):
        month = _MONTHS.get(m[2].lower())
        return _make(_year(m[3]), month, int(m[1])) if month else None
    if m := _MONTH_NAME_DAY.fullmatch(s):
        month = _MONTHS.get(m[1].lower())
        return _make(_year(m[3]), month, int(m[2])) if month else None
    if m := _COMPACT.fullmatch(s):
        return _make(int(m[1]), int(m[2]), int(m[3]))
    if s.isdigit() and len(s) == 5 and 20000 <= int(s) <= 80000:
        return (_EXCEL_EPOCH + dt.timedelta(days=int(s))).isoformat()
    return None


# ---- names ----------------------------------------------------------------------------------
_WORD = re.compile(r"[^\W\d_]+")


def _cap(m: re.Match[str]) -> str:
    w = m.group()
    if len(w) > 2 and w.startswith("mc"):
        return "Mc" + w[2].upper() + w[3:]  # McDonald, not Mcdonald
    return w[:1].upper() + w[1:]


def tidy_name(raw: str) -> str | None:
    """Trimmed, single-spaced; ALL-CAPS or all-lower names title-cased (O'Neil, Mary-Jane,
    McDonald); names typed in mixed case are kept as typed (DeVito, van Dyke)."""
    s = " ".join(raw.split())
    if not s:
        return None
    if s.isupper() or s.islower():
        s = _WORD.sub(_cap, s.lower())
    return s[:200]


# ---- emails ---------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,63}"
)


def clean_email(raw: str) -> str | None:
    """Lower-cased address when it is a plausible email, else None."""
    s = raw.strip().strip("<>").strip()
    if s.lower().startswith("mailto:"):
        s = s[7:]
    if len(s) > 254 or not _EMAIL.fullmatch(s) or ".." in s:
        return None
    return s.lower()


# ---- postcodes ------------------------------------------------------------------------------
_UK_POSTCODE = re.compile(r"([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})")


def tidy_postcode(raw: str) -> str | None:
    """Upper-cased; a UK postcode gets its single space ("sw1a1aa" -> "SW1A 1AA")."""
    s = " ".join(raw.split()).upper()
    if not s:
        return None
    if m := _UK_POSTCODE.fullmatch(s.replace(" ", "")):
        return f"{m[1]} {m[2]}"
    return s[:20]


def tidy_text(raw: str) -> str | None:
    s = raw.strip()
    return s[:5000] if s else None


def looks_like_email(raw: str) -> bool:
    return clean_email(raw) is not None


def looks_like_uk_postcode(raw: str) -> bool:
    return _UK_POSTCODE.fullmatch(raw.replace(" ", "").upper()) is not None
