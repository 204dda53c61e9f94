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
    number_type: int | None = None  # phonenumbers.PhoneNumberType of a valid number


_T = phonenumbers.PhoneNumberType
SMS_CAPABLE_TYPES = frozenset({_T.MOBILE, _T.FIXED_LINE_OR_MOBILE})
"""Number types a list may hold: mobiles, and FIXED_LINE_OR_MOBILE (regions such as US/CA
whose mobiles and landlines share ranges: phonenumbers cannot tell them apart, and Twilio's
error 30006 later marks a landline there undeliverable). Everything else is refused: fixed
lines, freephone, premium-rate, shared-cost, UAN (non-geographic business) and voicemail
numbers do not receive SMS; pagers do not take SMS; VoIP and personal ("follow-me")
numbers forward calls and receive SMS only sometimes, so a campaign cannot rely on them."""

_NOT_SMS: dict[int | None, str] = {
    _T.FIXED_LINE: "a landline (fixed line)",
    _T.TOLL_FREE: "a freephone (toll-free) number",
    _T.PREMIUM_RATE: "a premium-rate number",
    _T.SHARED_COST: "a shared-cost number",
    _T.UAN: "a non-geographic business (UAN) number",
    _T.VOICEMAIL: "a voicemail access number",
    _T.PAGER: "a pager number",
    _T.VOIP: "a VoIP number",
    _T.PERSONAL_NUMBER: "a personal (follow-me) number",
}


def sms_refusal(number_type: int | None) -> str | None:
    """None when a valid number of this type can receive SMS, else what the number is."""
    if number_type in SMS_CAPABLE_TYPES:
        return None
    return _NOT_SMS.get(number_type, "a number of unknown type")


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
    return PhoneResult(
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        number_type=phonenumbers.number_type(number),
    )


def sms_refusal_for(e164: str) -> str | None:
    """Why an E.164 number cannot receive SMS (see SMS_CAPABLE_TYPES), or None when it can or
    when phonenumbers does not know the number (Twilio then decides)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    refusal = sms_refusal(phonenumbers.number_type(number))
    return None if refusal is None else f"{e164} is {refusal}: it cannot receive SMS"


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
