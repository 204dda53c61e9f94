"""Phone normalisation fast enough for million-row imports, exactly as `dbr.phones` decides.

`dbr.phones.normalise` + `timezone_for` cost about 80 µs per number (phonenumbers' `parse`,
`is_valid_number` and the timezone lookup each walk its metadata again), which caps an
import near 12,000 rows/s. Real lists are dominated by a few plain shapes: `07911 123456`,
`+44 7911 123456`, `0044 7911 123456`, `7911123456` (Excel ate the zero), `(212) 555-0123`.
For those shapes this module applies the same rules phonenumbers applies (country code
extraction, national prefix stripping, the region chosen for a shared country code, the
number-type patterns and possible lengths) from metadata compiled once, in a few µs.

Any other input, and every number the fast path would call invalid, goes to the reference
`dbr.phones.normalise`, so errors carry its reasons. The fast path only ever answers "valid,
this E.164, this number type" (the type as `phonenumbers.number_type` reports it: the import
refuses numbers that cannot receive SMS, see `dbr.phones.sms_refusal`);
`tests/imports/test_normalise.py` checks it against phonenumbers on generated shapes
(`test_fast_phone_path_agrees_with_phonenumbers`, `..._gives_phonenumbers_number_type`), and
the import benchmark (`bench/import/run.py`) re-checks a sample of its own file.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, is_number_type_geographical
from phonenumbers.timezone import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from dbr import phones

# Formatting a person types around digits; anything else (letters, extensions, slashes)
# takes the reference path.
_SHAPE = re.compile(r"(\+|00)?[0-9 ().\-]{3,40}")
_STRIP = str.maketrans("", "", " ().-")

# Order matters: phonenumbers reports the first matching type (see _number_type_helper).
_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)
_T = phonenumbers.PhoneNumberType
_TYPE_OF = {
    "premium_rate": _T.PREMIUM_RATE,
    "toll_free": _T.TOLL_FREE,
    "shared_cost": _T.SHARED_COST,
    "voip": _T.VOIP,
    "personal_number": _T.PERSONAL_NUMBER,
    "pager": _T.PAGER,
    "uan": _T.UAN,
    "voicemail": _T.VOICEMAIL,
    "fixed_line": _T.FIXED_LINE,
    "mobile": _T.MOBILE,
}


def _desc_matches_length(desc: object, length: int) -> bool:
    lengths = getattr(desc, "possible_length", ()) or ()
    return not lengths or length in lengths


class _Region:
    """Compiled metadata of one region: prefixes, and a per-length regex whose named group
    is the number type."""

    def __init__(self, code: str, meta: PhoneMetadata) -> None:
        self.code = code
        self.meta = meta
        self.cc = meta.country_code
        self.cc_str = str(meta.country_code)
        self.leading_digits = re.compile(meta.leading_digits) if meta.leading_digits else None
        self.idd = re.compile(meta.international_prefix) if meta.international_prefix else None
        prefix = meta.national_prefix_for_parsing
        self.national_prefix = re.compile(prefix) if prefix else None
        self.transforms = bool(meta.national_prefix_transform_rule)
        general = meta.general_desc.national_number_pattern if meta.general_desc else None
        self.general = re.compile(general) if general else None
        self._by_length: dict[int, re.Pattern[str] | None] = {}
        mobile = meta.mobile
        self._mobile = (
            re.compile(mobile.national_number_pattern)
            if mobile is not None and mobile.national_number_pattern
            else None
        )

    def number_type(self, nsn: str) -> int | None:
        """`phonenumbers.number_type` of a national significant number, None when invalid
        (UNKNOWN)."""
        n = len(nsn)
        if n not in self._by_length:
            self._by_length[n] = self._compile(n)
        rx = self._by_length[n]
        m = rx.fullmatch(nsn) if rx is not None else None
        if m is None:
            return None
        name = m.lastgroup
        if name == "fixed_line":
            # As phonenumbers: a fixed-line match that the mobile pattern also matches (or a
            # region whose patterns are the same, like US/CA) is FIXED_LINE_OR_MOBILE. Only
            # fixed-line numbers pay for this second match.
            if self.meta.same_mobile_and_fixed_line_pattern or (
                self._mobile is not None
                and _desc_matches_length(self.meta.mobile, n)
                and self._mobile.fullmatch(nsn) is not None
            ):
                return _T.FIXED_LINE_OR_MOBILE
            return _T.FIXED_LINE
        return _TYPE_OF[name] if name is not None else None

    def strip_national_prefix(self, number: str) -> str | None:
        """The number without its national prefix, as phonenumbers strips it; None when the
        outcome depends on rules this module does not reproduce (transform rules, numbers
        that are viable with and without the prefix)."""
        if self.national_prefix is None:
            return number
        m = self.national_prefix.match(number)
        if m is None:
            return number
        if self.transforms or self.general is None or self.general.fullmatch(number):
            return None
        return number[m.end() :]

    def _compile(self, n: int) -> re.Pattern[str] | None:
        meta = self.meta
        general = meta.general_desc
        if general is None or not general.national_number_pattern:
            return None
        if not _desc_matches_length(general, n):
            return None
        alts = []
        for name in _TYPE_DESCS:
            desc = getattr(meta, name)
            if name == "mobile" and meta.same_mobile_and_fixed_line_pattern:
                continue  # phonenumbers answers FIXED_LINE_OR_MOBILE via fixed_line only
            if desc is None or not desc.national_number_pattern:
                continue
            if not _desc_matches_length(desc, n):
                continue
            alts.append(f"(?P<{name}>(?:{desc.national_number_pattern}))")
        if not alts:
            return None
        return re.compile(f"(?=(?:{general.national_number_pattern})\\Z)(?:{'|'.join(alts)})")


@lru_cache(maxsize=512)
def _region(code: str) -> _Region | None:
    meta = PhoneMetadata.metadata_for_region(code)
    return None if meta is None else _Region(code, meta)


@lru_cache(maxsize=512)
def _regions_for(cc: int) -> tuple[_Region, ...]:
    codes = COUNTRY_CODE_TO_REGION_CODE.get(cc, ())
    if not codes or codes[0] == "001":
        return ()
    return tuple(r for r in (_region(c) for c in codes) if r is not None)


@lru_cache(maxsize=512)
def _country_level_zone(cc: str) -> str | None:
    for length in range(len(cc), 0, -1):
        zones = TIMEZONE_DATA.get(cc[:length])
        if zones is not None:
            return _single(zones)
    return None


def _single(zones: tuple[str, ...]) -> str | None:
    real = [z for z in zones if z != "Etc/Unknown"]
    return real[0] if len(real) == 1 else None


def _geo_zone(digits: str) -> str | None:
    for length in range(min(TIMEZONE_LONGEST_PREFIX, len(digits)), 0, -1):
        zones = TIMEZONE_DATA.get(digits[:length])
        if zones is not None:
            return _single(zones)
    return None


def _classify(cc: int, nsn: str) -> int | None:
    """Type of a number in the region phonenumbers' region_code_for_number picks, or None."""
    regions = _regions_for(cc)
    if len(regions) == 1:
        return regions[0].number_type(nsn)
    for reg in regions:
        if reg.leading_digits is not None:
            if reg.leading_digits.match(nsn):
                return reg.number_type(nsn)
        else:
            t = reg.number_type(nsn)
            if t is not None:
                return t
    return None


def _nsn_from_international(digits: str) -> tuple[int, str] | None:
    if not digits or digits[0] == "0":
        return None
    for i in (1, 2, 3):
        cc = int(digits[:i])
        if cc in COUNTRY_CODE_TO_REGION_CODE:
            regions = _regions_for(cc)
            if not regions:
                return None
            # After the country code, phonenumbers strips a national prefix with the rules of
            # the code's main region ("+44 (0)7911 ..." is a valid way to write a UK mobile).
            nsn = regions[0].strip_national_prefix(digits[i:])
            return None if not nsn or nsn[0] == "0" else (cc, nsn)
    return None


def _nsn_from_national(digits: str, reg: _Region) -> tuple[int, str] | None:
    if reg.idd is not None and reg.idd.match(digits):
        return None
    if digits.startswith(reg.cc_str):
        # "447911123456": the country code without "+". phonenumbers takes it as one when
        # the whole string is not a viable national number but the rest is; the rest must
        # not start with a national prefix (that case takes a second stripping: its call).
        rest = digits[len(reg.cc_str) :]
        if (
            reg.general is None
            or reg.general.fullmatch(digits)
            or not reg.general.fullmatch(rest)
            or reg.strip_national_prefix(rest) != rest
            or not rest
            or rest[0] == "0"
        ):
            return None
        return reg.cc, rest
    nsn = reg.strip_national_prefix(digits)
    return None if not nsn or nsn[0] == "0" else (reg.cc, nsn)


class Phone(NamedTuple):
    e164: str | None
    timezone: str | None = None
    error: str | None = None
    kind: int | None = None  # phonenumbers.PhoneNumberType of a valid number


class PhoneNormaliser:
    """Normalises raw phone strings for one default region, caching by raw string."""

    def __init__(self, region: str = "GB", cache_size: int = 50_000) -> None:
        self.region = region
        self._reg = _region(region)
        self._cache: dict[str, Phone] = {}
        self._cache_size = cache_size
        self.fast_hits = 0
        self.slow_hits = 0

    def __call__(self, raw: str) -> Phone:
        hit = self._cache.get(raw)
        if hit is not None:
            return hit
        result = self.fast(raw)
        if result is None:
            self.slow_hits += 1
            result = self.slow(raw)
        else:
            self.fast_hits += 1
        if len(self._cache) >= self._cache_size:
            self._cache.clear()  # bounded memory: a big file must not grow this forever
        self._cache[raw] = result
        return result

    def fast(self, raw: str) -> Phone | None:
        """The answer for a plain valid number, or None to ask the reference path."""
        text = raw.strip()
        m = _SHAPE.fullmatch(text)
        if m is None or self._reg is None:
            return None
        intl = m.group(1)
        digits = text[len(intl) :].translate(_STRIP) if intl else text.translate(_STRIP)
        if not digits.isdigit() or not digits.isascii():
            return None
        parts = _nsn_from_international(digits) if intl else _nsn_from_national(digits, self._reg)
        if parts is None:
            return None
        cc, nsn = parts
        ntype = _classify(cc, nsn)
        if ntype is None:
            return None
        e164_digits = f"{cc}{nsn}"
        if is_number_type_geographical(ntype, cc):
            zone = _geo_zone(e164_digits)
        else:
            zone = _country_level_zone(str(cc))
        return Phone("+" + e164_digits, zone, None, ntype)

    def slow(self, raw: str) -> Phone:
        res = phones.normalise(raw, self.region)
        if res.e164 is None:
            return Phone(None, None, res.error)
        return Phone(res.e164, phones.timezone_for(res.e164), None, res.number_type)
