"""Column mapping: which CSV column feeds which lead field.

Suggestions come from header names (Mobile, Tel, Surname, Forename, E-mail Address, Post Code,
Enquiry Date ... in the many spellings lists use) and, when a header says nothing useful, from
the values (a column of phone-like values with an odd header is still the phone number).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

from dbr.datasets.errors import MappingError
from dbr.datasets.fastphone import PhoneNormaliser
from dbr.datasets.normalise import looks_like_email, looks_like_uk_postcode, parse_date

FIELDS = (
    "first_name",
    "last_name",
    "phone_number",
    "email",
    "postcode",
    "inquiry_date",
    "notes",
)
REQUIRED = ("first_name", "phone_number")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Header spellings, compared after lower-casing and dropping everything but letters and digits
# ("E-mail Address" -> "emailaddress").
_EXACT: dict[str, frozenset[str]] = {
    "phone_number": _words(
        "phone mobile mobilenumber mobileno mobilephone mob mobiletel mobiletelephone tel "
        "telephone telephonenumber telno telnumber phonenumber phoneno cell cellphone "
        "cellnumber contactnumber contactno contactphone number msisdn primaryphone "
        "phone1 mobile1 tel1 telephone1 homephone landline workphone whatsapp sms"
    ),
    "first_name": _words(
        "firstname forename forenames givenname givennames first fname christianname "
        "firstnames prenom vorname nombre"
    ),
    "last_name": _words(
        "lastname surname familyname lname secondname lastnames nachname nom apellidos"
    ),
    "email": _words("email emailaddress mail emailid emails email1 primaryemail contactemail"),
    "postcode": _words(
        "postcode postalcode zip zipcode zippostcode postcodezip pcode post plz postzip eircode"
    ),
    "inquiry_date": _words(
        "enquirydate inquirydate dateofenquiry dateofinquiry enquired inquired enquiry "
        "inquiry enquiryreceived inquiryreceived date createddate datecreated created "
        "createdat leaddate signupdate dateadded added optindate submitted submitteddate "
        "registered registrationdate"
    ),
    "notes": _words("notes note comments comment remarks message details description memo info"),
}
# Headers that only hint at a field (a full name column fills first_name when nothing
# better exists).
_WEAK: dict[str, frozenset[str]] = {
    "first_name": _words("name fullname contactname customername customer contact leadname"),
}
_CONTAINS: dict[str, tuple[str, ...]] = {
    "phone_number": ("phone", "mobile", "telephone", "cell", "tel"),
    "first_name": ("firstname", "forename", "givenname"),
    "last_name": ("surname", "lastname", "familyname"),
    "email": ("email",),
    "postcode": ("postcode", "postalcode", "zip"),
    "inquiry_date": ("enquir", "inquir", "date"),
    "notes": ("note", "comment"),
}
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_NAME_LIKE = re.compile(r"[^\W\d_]+(?:[ '\-.][^\W\d_]+){0,3}\.?")


def header_key(name: str) -> str:
    """Comparable header text: E-mail Address -> emailaddress, Téléphone -> telephone."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NON_ALNUM.sub("", plain.lower())


def column_names(header: Sequence[str]) -> list[str]:
    """Display names for a header row: trimmed, empty ones named "Column N", repeats
    numbered ("Phone", "Phone (2)") so that every column can be mapped by name."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(header, start=1):
        name = " ".join(raw.replace("\ufeff", "").split())[:100] or f"Column {i}"
        key = name.lower()
        if key in seen:
            seen[key] += 1
            name = f"{name} ({seen[key]})"
        else:
            seen[key] = 1
        names.append(name)
    return names


def _vetoed(key: str, field: str) -> bool:
    # A date of birth is not when they enquired, whatever its values look like.
    return field == "inquiry_date" and ("birth" in key or key in ("dob", "bday"))


def _header_score(key: str, field: str) -> float:
    if key in _EXACT[field]:
        return 1.0
    if key in _WEAK.get(field, ()):
        return 0.5
    for part in _CONTAINS[field]:
        if part in key and not (part == "tel" and not key.startswith("tel")):
            return 0.8
    return 0.0


def _share(values: Sequence[str], test: object) -> float:
    if not values:
        return 0.0
    hits = sum(1 for v in values if test(v))  # type: ignore[operator]
    return hits / len(values)


def _value_scores(values: Sequence[str], region: str) -> dict[str, float]:
    """What the values of a column look like, as weak evidence for a field."""
    phones = PhoneNormaliser(region)
    month_first = region == "US"
    scores: dict[str, float] = {}
    if _share(values, lambda v: phones(v).e164 is not None) >= 0.6:
        scores["phone_number"] = 0.7
    elif _share(values, looks_like_email) >= 0.6:
        scores["email"] = 0.7
    elif _share(values, lambda v: parse_date(v, month_first=month_first) is not None) >= 0.6:
        scores["inquiry_date"] = 0.6
    elif region == "GB" and _share(values, looks_like_uk_postcode) >= 0.6:
        scores["postcode"] = 0.6
    elif _share(values, _NAME_LIKE.fullmatch) >= 0.8:
        scores["first_name"] = 0.3  # words of letters: a name column, if nothing says better
    return scores


def suggest_mapping(
    columns: Sequence[str], samples: Sequence[Sequence[str]], region: str = "GB"
) -> dict[str, str | None]:
    """Column name -> suggested field (or None); each field goes to at most one column.

    `samples[i]` holds non-empty values of column i from the first rows of the file.
    """
    candidates: list[tuple[float, int, str]] = []
    for i, name in enumerate(columns):
        key = header_key(name)
        values = samples[i] if i < len(samples) else []
        by_value = _value_scores(values, region)
        for field in FIELDS:
            if _vetoed(key, field):
                continue
            score = max(_header_score(key, field), by_value.get(field, 0.0))
            # A header naming a field but holding something else entirely (a "Phone" column
            # full of emails) yields to what the values say.
            if score > 0 and by_value and field not in by_value and score < 1.0:
                score /= 2
            if score > 0:
                candidates.append((score, -i, field))
    candidates.sort(reverse=True)
    taken_fields: set[str] = set()
    result: dict[str, str | None] = dict.fromkeys(columns)
    for _, neg_i, field in candidates:
        col = columns[-neg_i]
        if field in taken_fields or result[col] is not None:
            continue
        result[col] = field
        taken_fields.add(field)
    return result


def validate_mapping(mapping: Mapping[str, str | None], columns: Sequence[str]) -> dict[str, str]:
    """The mapping as field -> column with empty entries dropped, or MappingError listing
    every problem (missing required fields, unknown columns, a column used twice)."""
    problems: list[dict[str, str]] = []
    clean: dict[str, str] = {}
    for field, col in mapping.items():
        if field not in FIELDS:
            problems.append({"field": field, "reason": f"unknown field; use one of {FIELDS}"})
            continue
        if col is None or not str(col).strip():
            continue
        clean[field] = str(col)
    for field in REQUIRED:
        if field not in clean:
            problems.append({"field": field, "reason": "required: choose the column holding it"})
    known = set(columns)
    for field, col in clean.items():
        if col not in known:
            problems.append(
                {"field": field, "reason": f"column {col!r} is not in the file", "column": col}
            )
    used: dict[str, str] = {}
    for field, col in clean.items():
        if col in used:
            problems.append(
                {
                    "field": field,
                    "reason": f"column {col!r} is already mapped to {used[col]}",
                    "column": col,
                }
            )
        else:
            used[col] = field
    if problems:
        raise MappingError(
            "The column mapping is not valid.",
            details={"problems": problems, "columns": list(columns)},
        )
    return clean
