"""Streaming file writers: rows go from PostgreSQL to disk without ever being held together.

CSV is PostgreSQL's own `COPY (query) TO STDOUT (FORMAT csv, HEADER)`, passed through in the
chunks the server sends (RFC 4180 quoting, NULL as an empty field), after a UTF-8 byte-order
mark so that Excel reads accents and pound signs right. XLSX tables are fed from a
server-side cursor (2,000 rows a fetch) into `dbr.exports.xlsx.TableWriter`, which streams the
worksheet into the file: memory stays flat however many rows there are. `xlsx_workbook` is
the XlsxWriter workbook (constant memory, strings never turned into formulas or links) of the
analytics summary, whose charts need it. The queries already neutralise formula-like text
(see `cells`).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import xlsxwriter
from psycopg import sql
from psycopg.rows import tuple_row

from dbr.exports.xlsx import TableWriter, kind_of

UTF8_BOM = b"\xef\xbb\xbf"
_BOOL = 16  # PostgreSQL's boolean type oid

Query = str | sql.Composable


def write_csv(conn: psycopg.Connection[Any], query: Query, params: Any, path: Path) -> int:
    """Writes the rows of `query` to `path` as CSV with a header; returns the row count.
    Booleans are written TRUE/FALSE (what spreadsheets read as booleans), not COPY's t/f."""
    inner = sql.SQL(query) if isinstance(query, str) else query  # type: ignore[arg-type]
    with conn.cursor() as cur:
        cur.execute(sql.SQL("select * from ({}) q limit 0").format(inner), params)
        columns = [(d.name, d.type_code) for d in cur.description or ()]
    select = sql.SQL(", ").join(
        sql.SQL("case q.{c} when true then 'TRUE' when false then 'FALSE' end as {c}").format(
            c=sql.Identifier(name)
        )
        if oid == _BOOL
        else sql.SQL("q.{}").format(sql.Identifier(name))
        for name, oid in columns
    )
    statement = sql.SQL("copy (select {} from ({}) q) to stdout with (format csv, header)").format(
        select, inner
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
    """Writes the rows of `query` to `path` as an XLSX worksheet (more past Excel's row limit)
    with a bold, frozen header; returns the row count."""
    with conn.cursor(name=f"export_{uuid.uuid4().hex}", row_factory=tuple_row) as cur:
        cur.itersize = 2000
        cur.execute(query, params)
        assert cur.description is not None
        table = TableWriter(
            path,
            sheet,
            [d.name for d in cur.description],
            [kind_of(d.type_code) for d in cur.description],
        )
        try:
            table.write_rows(cur)
        finally:
            table.close()
        return table.rows
