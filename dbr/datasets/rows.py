"""One CSV record -> one staged lead row, or a row error; field problems become warnings.

Policy (what a person importing a list would expect):
- phone: required; normalised to E.164 in the client's region; invalid or empty -> row error;
  a valid number that cannot receive SMS (landline, freephone, premium rate, ...; see
  `dbr.phones.SMS_CAPABLE_TYPES`) -> row error naming what it is.
- first/last name: tidied; an empty first name is allowed (the lead is still reachable).
- email: optional; an invalid address is dropped with a warning, the lead is imported.
- inquiry_date: optional; an unparseable date is dropped with a warning.
- postcode, notes: tidied text.
- columns not mapped to a field are kept in custom_fields (header -> value), so nothing in
  the file is lost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbr.datasets.fastphone import PhoneNormaliser
from dbr.datasets.normalise import (
    BoundedCache,
    clean_email,
    parse_date,
    tidy_name,
    tidy_postcode,
    tidy_text,
)
from dbr.phones import sms_refusal

ISSUE_LIMIT = 1000

# Staged row layout (also the COPY column order of the staging table).
STAGE_COLUMNS = (
    "line",
    "phone_number",
    "timezone",
    "first_name",
    "last_name",
    "email",
    "postcode",
    "inquiry_date",
    "notes",
    "custom_fields",
)
StagedRow = tuple[Any, ...]


@dataclass
class IssueLog:
    """Row errors or warnings: every one counted, the first `limit` kept for the response."""

    limit: int = ISSUE_LIMIT
    count: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: int | None, reason: str, field: str | None = None) -> None:
        self.count += 1
        if len(self.items) < self.limit:
            item: dict[str, Any] = {"row": row, "reason": reason}
            if field is not None:
                item["field"] = field
            self.items.append(item)

    @property
    def truncated(self) -> int:
        return self.count - len(self.items)


class RowBuilder:
    """Builds staged rows for one file: `columns` are the header's names, `mapping` is
    field -> column name (validated), `region` the client's default region."""

    def __init__(
        self,
        columns: Sequence[str],
        mapping: Mapping[str, str],
        region: str,
        errors: IssueLog,
        warnings: IssueLog,
    ) -> None:
        index = {name: i for i, name in enumerate(columns)}
        self._width = len(columns)
        idx = {f: index[c] for f, c in mapping.items()}
        # Column positions, or -1 for an unmapped field (reads as "").
        self._phone_i = idx["phone_number"]
        self._first_i = idx.get("first_name", -1)
        self._last_i = idx.get("last_name", -1)
        self._email_i = idx.get("email", -1)
        self._date_i = idx.get("inquiry_date", -1)
        self._postcode_i = idx.get("postcode", -1)
        self._notes_i = idx.get("notes", -1)
        mapped = set(idx.values())
        self._custom = [(i, name) for i, name in enumerate(columns) if i not in mapped]
        self._phone = PhoneNormaliser(region)
        month_first = region == "US"
        self._date = BoundedCache(lambda s: parse_date(s, month_first=month_first))
        self._name = BoundedCache(tidy_name)
        self._postcode = BoundedCache(tidy_postcode)
        self.errors = errors
        self.warnings = warnings
        self.staged = 0

    @property
    def phone_stats(self) -> tuple[int, int]:
        return self._phone.fast_hits, self._phone.slow_hits

    def __call__(self, line: int, cells: list[str]) -> StagedRow | None:
        if len(cells) < self._width:
            cells = cells + [""] * (self._width - len(cells))
        cells.append("")  # cells[-1]: what an unmapped field (index -1) reads

        phone = self._phone(cells[self._phone_i])
        if phone.e164 is None:
            self.errors.add(line, phone.error or "invalid phone number")
            return None
        refusal = sms_refusal(phone.kind)
        if refusal is not None:
            raw = cells[self._phone_i].strip()[:40]
            self.errors.add(line, f"{raw!r} is {refusal}: it cannot receive SMS")
            return None

        first = self._name(cells[self._first_i])
        last = self._name(cells[self._last_i])

        email = None
        raw_email = cells[self._email_i]
        if raw_email and not raw_email.isspace():
            email = clean_email(raw_email)
            if email is None:
                self.warnings.add(
                    line, f"email {raw_email.strip()[:100]!r} is not valid; left empty", "email"
                )

        inquiry = None
        raw_date = cells[self._date_i]
        if raw_date and not raw_date.isspace():
            inquiry = self._date(raw_date)
            if inquiry is None:
                self.warnings.add(
                    line,
                    f"date {raw_date.strip()[:50]!r} is not a date we can read; left empty",
                    "inquiry_date",
                )

        postcode = self._postcode(cells[self._postcode_i])
        notes = tidy_text(cells[self._notes_i])

        custom = None
        if self._custom:
            extra = {name: v for i, name in self._custom if (v := cells[i].strip())}
            if extra:
                custom = json.dumps(extra, ensure_ascii=False)

        self.staged += 1
        return (
            line,
            phone.e164,
            phone.timezone,
            first,
            last,
            email,
            postcode,
            inquiry,
            notes,
            custom,
        )
