"""What a cell of an export may contain.

Spreadsheets run a cell that begins with `=`, `+`, `-` or `@` (and, per OWASP's CSV
injection guidance, a tab or carriage return) as a formula: `=HYPERLINK(...)` in a lead's
notes would run on the computer of whoever opens the export. Such a text cell gets a leading
apostrophe, which Excel, LibreOffice and Google Sheets read as "this is text". Leading spaces
do not hide a formula from a spreadsheet, so they are looked through. A plain number
(`+447911123456`, `-5`) cannot call anything and is left as it is, so phone numbers stay
usable.

The rows of every export are neutralised in SQL (`private.export_text`, applied to every text
column of the export queries); `neutralise` is the same rule for values that come from
Python (the analytics summary). Tests hold the two to the same answers.
"""

from __future__ import annotations

import re

_FORMULA = re.compile(r"^[ \u00a0]*[=+\-@\t\r]")
_NUMBER = re.compile(r"[+-]?[0-9]+([.,][0-9]+)?")


def neutralise(value: str) -> str:
    """`value`, with a leading apostrophe when a spreadsheet would read it as a formula."""
    if _FORMULA.match(value) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value
