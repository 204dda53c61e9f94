"""What a file is: CSV or not, its text encoding and delimiter, and its records with the line
numbers a person sees.

Real lists come from Excel and CRMs: UTF-8 with or without a BOM, UTF-16 with a BOM (Excel's
"Unicode Text", tab-separated), Windows-1252 ("£" as 0xA3), separated by commas, semicolons
(European Excel) or tabs. Content decides, never the file name: an .xlsx renamed .csv is
refused, a .txt holding CSV is accepted.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from dbr.datasets.errors import BadCsv, NotCsv

SAMPLE_BYTES = 256 * 1024
DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}

# Leading bytes of formats people upload by mistake, with what to tell them.
_MAGIC = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or a ZIP archive", "Save it as CSV first."),
    (b"PK\x05\x06", "a ZIP archive", "Upload the CSV file inside it."),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel workbook (.xls)", "Save it as CSV first."),
    (b"%PDF-", "a PDF document", ""),
    (b"\x89PNG", "a PNG image", ""),
    (b"\xff\xd8\xff", "a JPEG image", ""),
    (b"GIF8", "a GIF image", ""),
    (b"\x1f\x8b", "a gzip archive", "Upload the CSV file inside it."),
    (b"BZh", "a bzip2 archive", "Upload the CSV file inside it."),
    (b"7z\xbc\xaf", "a 7-Zip archive", "Upload the CSV file inside it."),
    (b"Rar!", "a RAR archive", "Upload the CSV file inside it."),
    (b"\x7fELF", "a program", ""),
    (b"{\\rtf", "an RTF document", "Save it as CSV first."),
)
_BOMS = (
    (codecs.BOM_UTF32_LE, None),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, None),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Control characters never found in a real CSV (tab, CR, LF and form feed excepted).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Dialect:
    encoding: str  # a Python codec name
    delimiter: str

    @property
    def delimiter_name(self) -> str:
        return _DELIMITER_NAMES.get(self.delimiter, self.delimiter)


def encoding_candidates(head: bytes) -> list[str]:
    """Encodings to try for a file starting with `head`, best first; refuses binary content."""
    for magic, what, hint in _MAGIC:
        if head.startswith(magic):
            raise NotCsv(f"This file is {what}, not CSV. {hint}".strip())
    for bom, enc in _BOMS:
        if head.startswith(bom):
            if enc is None:
                raise NotCsv("UTF-32 text is not supported; save the file as UTF-8 CSV.")
            return [enc]
    if b"\x00" in head:
        # UTF-16 without a BOM shows as every other byte zero; anything else is binary.
        even = head[0::2].count(0)
        odd = head[1::2].count(0)
        half = max(1, len(head) // 2)
        if odd > 0.4 * half and even == 0:
            return ["utf-16-le"]
        if even > 0.4 * half and odd == 0:
            return ["utf-16-be"]
        raise NotCsv("This file contains binary data, not CSV text.")
    return ["utf-8", "cp1252", "latin-1"]


def _decodes(head: bytes, encoding: str, complete: bool) -> str | None:
    dec = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        return dec.decode(head, final=complete)
    except UnicodeDecodeError:
        return None


def decode_head(head: bytes, complete: bool) -> tuple[str, str]:
    """(encoding, decoded text) for the first bytes of a file; `complete` when it is all."""
    for enc in encoding_candidates(head):
        text = _decodes(head, enc, complete)
        if text is None:
            continue
        if text and len(_CONTROL.findall(text)) > max(2, len(text) // 1000):
            continue  # e.g. Latin-1 read of binary data: full of C0/C1 control characters
        return enc, text
    raise NotCsv("This file is not readable text; save it as CSV (UTF-8) and upload it again.")


def _records(text: str, delimiter: str, limit: int) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    out: list[list[str]] = []
    try:
        for rec in reader:
            if any(c.strip() for c in rec):
                out.append(rec)
                if len(out) >= limit:
                    break
    except csv.Error:
        pass
    return out


def sniff_delimiter(text: str, complete: bool) -> str:
    """Comma, semicolon or tab: the one giving a header of several columns and the same
    number of fields on most rows."""
    first = text.lstrip("\ufeff")[:6].lower()
    if first.startswith("sep=") and first[4:5] in DELIMITERS:
        return first[4]  # Excel's hint line: "sep=;"
    if not complete:
        # The sample may end mid-record: keep whole lines only.
        cut = max(text.rfind("\n"), text.rfind("\r"))
        text = text[: cut + 1] if cut > 0 else text
    best: tuple[float, int, int] | None = None
    best_delim = ","
    for rank, delim in enumerate(reversed(DELIMITERS)):
        recs = _records(text, delim, 50)
        if not recs:
            continue
        header_width = len(recs[0])
        if header_width < 2:
            continue
        widths = Counter(len(r) for r in recs)
        consistency = widths[header_width] / len(recs)
        score = (consistency, header_width, rank)
        if best is None or score > best:
            best, best_delim = score, delim
    return best_delim


def detect(path: Path) -> Dialect:
    """Encoding and delimiter of the file at `path` (read from its first bytes)."""
    with path.open("rb") as f:
        head = f.read(SAMPLE_BYTES)
        complete = len(head) < SAMPLE_BYTES
    if not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise BadCsv("The file is empty.")
    encoding, text = decode_head(head, complete)
    return Dialect(encoding, sniff_delimiter(text, complete))


def fallback_encoding(encoding: str) -> str | None:
    """The next encoding to try when a strict decode fails past the sampled head."""
    return {"utf-8": "cp1252", "cp1252": "latin-1"}.get(encoding)


def open_text(path: Path, dialect: Dialect, *, strict: bool = True) -> TextIO:
    return path.open(
        "r", encoding=dialect.encoding, errors="strict" if strict else "replace", newline=""
    )


def raw_file(text: TextIO) -> BinaryIO:
    """The binary file under a text stream, for progress by bytes read."""
    return text.buffer  # type: ignore[attr-defined, no-any-return]


def iter_records(text: TextIO, dialect: Dialect) -> Iterator[tuple[int, list[str]]]:
    """Yields (line number where the record starts, cells) for every record that has content.

    Blank lines and rows whose cells are all empty are skipped. Line numbers count physical
    lines as an editor shows them (1-based), so a record holding a quoted line break advances
    the count for the records after it.
    """
    reader = csv.reader(text, delimiter=dialect.delimiter)
    last = 0
    try:
        for cells in reader:
            start = last + 1
            last = reader.line_num
            if not cells:
                continue
            for c in cells:
                if c and not c.isspace():
                    yield start, cells
                    break
    except csv.Error as exc:
        raise BadCsv(
            f"Line {last + 1} cannot be read as CSV: {exc}. "
            'Check for a quote (") that is opened and never closed.',
            details={"row": last + 1},
        ) from exc
