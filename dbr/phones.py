"""Phone numbers: parsing to E.164 and the lead's local timezone, with `phonenumbers`."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import timezone as pn_timezone

_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


@dataclass(frozen=True)
class PhoneResult:
    e164: str | None
    error: str | None = None


def normalise(raw: str | None, region: str = "GB") -> PhoneResult:
    """Return the E.164 form of `raw` read in `region`, or the reason it is not a valid number."""
    text = (raw or "").strip()
    if not text:
        return PhoneResult(None, "phone number is empty")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        return PhoneResult(
            None, f"invalid phone number {raw!r}: {_REASONS.get(exc.error_type, 'unparseable')}"
        )
    if not phonenumbers.is_valid_number(number):
        return PhoneResult(None, f"invalid phone number {raw!r} for region {region}")
    return PhoneResult(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def to_e164(raw: str | None, region: str = "GB") -> str | None:
    return normalise(raw, region).e164


def timezone_for(e164: str) -> str | None:
    """The single IANA timezone of a number, or None when the number spans several zones."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    zones = [z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown"]
    return zones[0] if len(zones) == 1 else None
