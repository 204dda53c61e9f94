"""A streaming XLSX writer for tables: rows in, one worksheet XML streamed into the zip.

XlsxWriter (used for the analytics summary and its charts) spends ~10-20 us per cell in
Python; a 100k-lead export is 2 million cells, 20-45 s on this machine (bench/exports). A
table needs none of its features, so rows are written here straight as SpreadsheetML: each
row becomes one `<row>` string (rendered by a function compiled once per export from the
columns' types) written into the worksheet's deflate stream inside the zip, so memory stays
flat whatever the row count. Strings are inline strings (never formulas: the queries
neutralise formula-like text, and a cell typed `inlineStr` is never evaluated), dates and
timestamps are Excel serial dates with a date format, numbers and booleans are themselves.
XML-illegal control characters are dropped; text past Excel's 32,767 characters a cell is
cut. A sheet that reaches Excel's 1,048,576 rows continues on a new sheet. The result opens
in Excel, LibreOffice, Google Sheets and openpyxl.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

MAX_ROWS = 1_048_576  # per sheet, header included

# Column kinds, from PostgreSQL type oids.
TEXT, NUMBER, BOOL, DATE, TIMESTAMP = "text", "number", "bool", "date", "timestamp"
_KINDS = {16: BOOL, 1082: DATE, 1114: TIMESTAMP, 20: NUMBER, 21: NUMBER, 23: NUMBER,
          700: NUMBER, 701: NUMBER, 1700: NUMBER}  # fmt: skip

_EPOCH = dt.datetime(1899, 12, 30)
_EPOCH_DATE = _EPOCH.date()
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SPECIAL = re.compile("[&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.styles+xml"/>'
    "{sheets}</Types>"
)
_SHEET_TYPE = (
    '<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/vnd.'
    'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    "<sheets>{sheets}</sheets></workbook>"
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '{sheets}<Relationship Id="rIdStyles" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>'
)
_SHEET_REL = (
    '<Relationship Id="rId{n}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet{n}.xml"/>'
)
# Style 0 default, 1 bold (header), 2 date, 3 date and time.
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm:ss"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
    'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
    "<cols>{cols}</cols><sheetData>"
)
_SHEET_TAIL = "</sheetData></worksheet>"


def _letters(n: int) -> str:
    out = ""
    n += 1
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def _text(value: Any) -> str:
    s = value if isinstance(value, str) else str(value)
    if _SPECIAL.search(s):
        s = escape(_ILLEGAL.sub("", s))
    return s


# The XML of one cell of each kind, `{ref}` and `{v}` filled in per row.
_CELL_XML = {
    NUMBER: '<c r="{ref}"><v>{v}</v></c>',
    BOOL: '<c r="{ref}" t="b"><v>{v}</v></c>',
    DATE: '<c r="{ref}" s="2"><v>{v}</v></c>',
    TIMESTAMP: '<c r="{ref}" s="3"><v>{v}</v></c>',
    TEXT: '<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{v}</t></is></c>',
}
# How each kind's value becomes the cell's text (Python source, the value is `x`).
_VALUE_SRC = {
    NUMBER: "str(x)",
    BOOL: "('1' if x else '0')",
    DATE: "str((x - EPOCH_DATE).days)",
    TIMESTAMP: "'%.8f' % (((x.replace(tzinfo=None) if x.tzinfo else x) - EPOCH)"
    ".total_seconds() / 86400)",
}

Renderer = Callable[[Sequence[Any], str], str]


def _renderer(kinds: Sequence[str], letters: Sequence[str]) -> Renderer:
    """A function rendering one row's `<row>` XML for these column kinds, compiled once per
    export: per-cell function calls are most of the cost of writing a cell, so each column's
    code is written out inline. The generated source holds only our own constants."""
    lines = ["def render(row, r):", "    out = ['<row r=\"', r, '\">']", "    add = out.append"]
    for i, kind in enumerate(kinds):
        head, tail = _CELL_XML[kind].split("{v}")
        before, after = head.split("{ref}")
        lines.append(f"    x = row[{i}]")
        lines.append("    if x is not None:")
        if kind == TEXT:
            lines.append("        if x.__class__ is not str: x = str(x)")
            lines.append("        if len(x) > 32767: x = x[:32767]")  # Excel's limit per cell
            lines.append("        if not x.isprintable(): x = ILLEGAL.sub('', x)")
            lines.append("        if '&' in x or '<' in x or '>' in x: x = escape(x)")
            value = "x"
        else:
            value = _VALUE_SRC[kind]
        lines.append(f"        add({before + letters[i]!r} + r + {after!r} + {value} + {tail!r})")
    lines += ["    add('</row>')", "    return ''.join(out)"]
    scope: dict[str, Any] = {
        "escape": escape,
        "ILLEGAL": _ILLEGAL,
        "EPOCH": _EPOCH,
        "EPOCH_DATE": _EPOCH_DATE,
    }
    exec("\n".join(lines), scope)  # our own constants only, see above
    return scope["render"]


class TableWriter:
    """Writes one table (a header and rows) to an .xlsx file, streaming."""

    def __init__(self, path: Path, title: str, names: Sequence[str], kinds: Sequence[str]):
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        self._title = title
        self._names = list(names)
        self._letters = [_letters(i) for i in range(len(names))]
        self._render = _renderer(kinds, self._letters)
        self._sheets: list[str] = []
        self._out: IO[bytes] | None = None
        self._row = 0
        self.rows = 0

    def _start_sheet(self) -> None:
        self._end_sheet()
        n = len(self._sheets) + 1
        self._sheets.append(self._title if n == 1 else f"{self._title} ({n})"[:31])
        self._out = self._zip.open(f"xl/worksheets/sheet{n}.xml", "w", force_zip64=True)
        cols = "".join(
            f'<col min="{i + 1}" max="{i + 1}" width="{min(max(len(name) + 2, 12), 40)}" '
            'customWidth="1"/>'
            for i, name in enumerate(self._names)
        )
        header = "".join(
            f'<c r="{self._letters[i]}1" t="inlineStr" s="1"><is><t>{_text(name)}</t></is></c>'
            for i, name in enumerate(self._names)
        )
        self._out.write((_SHEET_HEAD.format(cols=cols) + f'<row r="1">{header}</row>').encode())
        self._row = 1

    def _end_sheet(self) -> None:
        if self._out is not None:
            self._out.write(_SHEET_TAIL.encode())
            self._out.close()
            self._out = None

    def write_rows(self, rows: Iterable[Sequence[Any]], batch: int = 500) -> None:
        """Appends rows (values in column order; None leaves the cell empty)."""
        if self._out is None:
            self._start_sheet()
        render = self._render
        buf: list[str] = []
        add = buf.append
        for row in rows:
            if self._row >= MAX_ROWS:
                self._flush(buf)
                self._start_sheet()
            self._row += 1
            add(render(row, str(self._row)))
            self.rows += 1
            if len(buf) >= batch:
                self._flush(buf)
        self._flush(buf)

    def _flush(self, buf: list[str]) -> None:
        if buf and self._out is not None:
            self._out.write("".join(buf).encode())
            buf.clear()

    def close(self) -> None:
        if self._out is None and not self._sheets:
            self._start_sheet()
        self._end_sheet()
        n = len(self._sheets)
        z = self._zip
        z.writestr(
            "[Content_Types].xml",
            _CONTENT_TYPES.format(sheets="".join(_SHEET_TYPE.format(n=i + 1) for i in range(n))),
        )
        z.writestr("_rels/.rels", _ROOT_RELS)
        z.writestr(
            "xl/workbook.xml",
            _WORKBOOK.format(
                sheets="".join(
                    f'<sheet name={quoteattr(name)} sheetId="{i + 1}" r:id="rId{i + 1}"/>'
                    for i, name in enumerate(self._sheets)
                )
            ),
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            _WORKBOOK_RELS.format(sheets="".join(_SHEET_REL.format(n=i + 1) for i in range(n))),
        )
        z.writestr("xl/styles.xml", _STYLES)
        z.close()


def kind_of(type_oid: int) -> str:
    return _KINDS.get(type_oid, TEXT)
