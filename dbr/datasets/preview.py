"""The upload preview: dialect, column names, three sample values per column, suggested
mapping and the number of data rows, from one streaming pass over the file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbr.datasets.dialect import Dialect, detect, fallback_encoding, iter_records, open_text
from dbr.datasets.errors import BadCsv, NotCsv
from dbr.datasets.fastphone import PhoneNormaliser
from dbr.datasets.mapping import column_names, suggest_mapping
from dbr.datasets.normalise import looks_like_email, parse_date

SAMPLE_VALUES = 3
SHAPE_ROWS = 200
MAX_COLUMNS = 500
_EXCEL_SEP_LINE = re.compile(r"sep=.?")
_NUMBER = re.compile(r"[+-]?[\d.,\s]+")


@dataclass(frozen=True)
class ColumnPreview:
    name: str
    sample_values: list[str]
    suggested_mapping: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sample_values": self.sample_values,
            "suggested_mapping": self.suggested_mapping,
        }


@dataclass(frozen=True)
class Preview:
    dialect: Dialect
    header_line: int
    columns: list[ColumnPreview]
    rows_detected: int


def read_header(
    records: Iterator[tuple[int, list[str]]], region: str = "GB"
) -> tuple[int, list[str]]:
    """(line, column names) of the header: the first record with content, after Excel's
    optional "sep=;" line. Refuses a file whose first row is data rather than names."""
    for line, cells in records:
        if len(cells) <= 2 and _EXCEL_SEP_LINE.fullmatch("".join(cells).strip()):
            continue
        if len(cells) > MAX_COLUMNS:
            raise BadCsv(
                f"The header has {len(cells)} columns; at most {MAX_COLUMNS} are supported.",
                details={"row": line},
            )
        _refuse_data_as_header(line, cells, region)
        return line, column_names(cells)
    raise BadCsv("The file has no rows: it needs a header row naming its columns.")


def _refuse_data_as_header(line: int, cells: list[str], region: str) -> None:
    filled = [c.strip() for c in cells if c.strip()]
    phones = PhoneNormaliser(region)

    def is_value(c: str) -> bool:
        return (
            phones.fast(c) is not None
            or looks_like_email(c)
            or parse_date(c) is not None
            or _NUMBER.fullmatch(c) is not None
        )

    values = [c for c in filled if is_value(c)]
    if filled and len(values) * 2 >= len(filled):
        raise BadCsv(
            f"Row {line} looks like data, not column names (e.g. {values[0]!r}). "
            "Add a header row naming the columns (First Name, Phone, ...) and upload again.",
            details={"row": line},
        )


def _scan(path: Path, dialect: Dialect, region: str) -> Preview:
    with open_text(path, dialect) as text:
        records = iter_records(text, dialect)
        header_line, names = read_header(records, region)
        width = len(names)
        samples: list[list[str]] = [[] for _ in names]
        shapes: list[list[str]] = [[] for _ in names]
        rows = 0
        for _, cells in records:
            rows += 1
            if rows <= SHAPE_ROWS:
                for i, raw in enumerate(cells[:width]):
                    value = raw.strip()
                    if value:
                        shapes[i].append(value)
                        if len(samples[i]) < SAMPLE_VALUES:
                            samples[i].append(value[:200])
    suggested = suggest_mapping(names, shapes, region)
    columns = [ColumnPreview(n, samples[i], suggested[n]) for i, n in enumerate(names)]
    return Preview(dialect, header_line, columns, rows)


def build_preview(path: Path, region: str = "GB") -> Preview:
    """Reads the whole file once (streaming) so that the encoding is verified end to end and
    rows are counted as the importer will count them."""
    dialect = detect(path)
    while True:
        try:
            return _scan(path, dialect, region)
        except UnicodeDecodeError as exc:
            nxt = fallback_encoding(dialect.encoding)
            if nxt is None:
                raise NotCsv(
                    f"This file is not valid {dialect.encoding} text "
                    f"(byte {exc.start} of a chunk cannot be decoded); save it as CSV (UTF-8)."
                ) from exc
            dialect = Dialect(nxt, dialect.delimiter)
