"""Streaming file writers: rows go from PostgreSQL to disk without ever being held together.

CSV is PostgreSQL's own `COPY (query) TO STDOUT (FORMAT csv, HEADER)`, passed through in the
chunks the server sends (RFC 4180 quoting, NULL as an empty field), after a UTF-8 byte-order
mark so that Excel reads accents and pound signs right. XLSX is XlsxWriter in
`constant_memory` mode fed from a server-side cursor: each row is flushed to the worksheet's
file as soon as the next begins, so memory stays flat however many rows there are; a sheet
that reaches Excel's 1,048,576-row limit continues on a new sheet. Strings are written as
strings (never turned into formulas or links), dates and times as Excel dates, numbers and
booleans as themselves. The queries already neutralise formula-like text (see `cells`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import xlsxwriter
from psycopg import sql
from psycopg.rows import tuple_row

UTF8_BOM = b"\xef\xbb\xbf"
XLSX_MAX_ROWS = 1_048_576  # per sheet, header included

# PostgreSQL type oids of the export queries' columns.
_BOOL, _DATE, _TIMESTAMP = 16, 1082, 1114
_NUMBERS = {20, 21, 23, 700, 701, 1700}

Query = str | sql.Composable


def write_csv(conn: psycopg.Connection[Any], query: Query, params: Any, path: Path) -> int:
    """Writes the rows of `query` to `path` as CSV with a header; returns the row count."""
    statement = sql.SQL("copy ({}) to stdout with (format csv, header)").format(
        sql.SQL(query) if isinstance(query, str) else query  # type: ignore[arg-type]
    )
    with path.open("wb") as out, conn.cursor() as cur:
        out.write(UTF8_BOM)
        with cur.copy(statement, params) as copy:
            for chunk in copy:
                out.write(chunk)
        return max(cur.rowcount, 0)


def xlsx_workbook(path: Path) -> xlsxwriter.Workbook:
    """A streaming workbook: constant memory, strings never read as formulas or links."""
    return xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "tmpdir": str(path.parent),
        },
    )


def write_xlsx(
    conn: psycopg.Connection[Any], query: Query, params: Any, path: Path, sheet: str
) -> int:
    """Writes the rows of `query` to `path` as one XLSX worksheet (more past Excel's row
    limit) with a bold, frozen header; returns the row count."""
    wb = xlsx_workbook(path)
    try:
        return _fill(wb, conn, query, params, sheet)
    finally:
        wb.close()


def _fill(
    wb: xlsxwriter.Workbook, conn: psycopg.Connection[Any], query: Query, params: Any, title: str
) -> int:
    bold = wb.add_format({"bold": True})
    day = wb.add_format({"num_format": "yyyy-mm-dd"})
    moment = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    with conn.cursor(name=f"export_{uuid.uuid4().hex}", row_factory=tuple_row) as cur:
        cur.itersize = 2000
        cur.execute(query, params)
        assert cur.description is not None
        names = [d.name for d in cur.description]
        types = [d.type_code for d in cur.description]

        def start(n: int) -> tuple[Any, list[Callable[[int, int, Any], Any]]]:
            ws = wb.add_worksheet(title if n == 1 else f"{title} ({n})"[:31])
            ws.freeze_panes(1, 0)
            for c, name in enumerate(names):
                ws.set_column(c, c, min(max(len(name) + 2, 12), 40))
                ws.write_string(0, c, name, bold)
            text, number, flag, when = (
                ws.write_string,
                ws.write_number,
                ws.write_boolean,
                ws.write_datetime,
            )

            def cell(oid: int) -> Callable[[int, int, Any], Any]:
                if oid == _BOOL:
                    return flag
                if oid in _NUMBERS:
                    return number
                if oid in (_DATE, _TIMESTAMP):
                    fmt = day if oid == _DATE else moment
                    return lambda r, c, v: when(r, c, v, fmt)
                return lambda r, c, v: text(r, c, v if isinstance(v, str) else str(v))

            return ws, [cell(t) for t in types]

        sheet_no = 1
        _, cells = start(sheet_no)
        r = 0
        total = 0
        for row in cur:
            r += 1
            if r >= XLSX_MAX_ROWS:
                sheet_no += 1
                _, cells = start(sheet_no)
                r = 1
            for c, v in enumerate(row):
                if v is not None:
                    cells[c](r, c, v)
            total += 1
        return total
