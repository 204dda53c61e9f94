"""The streaming table writer: what goes in comes back out of openpyxl, typed, escaped, and
split across sheets at Excel's row limit."""

from __future__ import annotations

import datetime as dt
import zipfile
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import pytest

from dbr.exports import xlsx
from dbr.exports.xlsx import BOOL, DATE, NUMBER, TEXT, TIMESTAMP, TableWriter


def test_values_come_back_typed_and_escaped(tmp_path: Path):
    path = tmp_path / "t.xlsx"
    table = TableWriter(
        path,
        "Leads",
        ["name", "n", "ok", "day", "at", "score"],
        [TEXT, NUMBER, BOOL, DATE, TIMESTAMP, NUMBER],
    )
    rows = [
        (
            "Zoë & <Renée> \"quoted\" 'x'",
            3,
            True,
            dt.date(2024, 2, 29),
            dt.datetime(2026, 3, 29, 1, 30, 15),
            Decimal("0.8125"),
        ),
        (
            "bell\x07 and\ttab\nnewline",
            -2,
            False,
            dt.date(1999, 12, 31),
            dt.datetime(2026, 12, 1, 23, 59, 59),
            1.5,
        ),
        (None, None, None, None, None, None),
        ("=1+1", 0, None, None, None, None),
    ]
    table.write_rows(rows)
    table.close()
    assert table.rows == 4
    wb = openpyxl.load_workbook(path)
    ws = wb["Leads"]
    assert [c.value for c in ws[1]] == ["name", "n", "ok", "day", "at", "score"]
    assert ws["A1"].font.b and ws.freeze_panes == "A2"
    got = list(ws.iter_rows(min_row=2, values_only=True))
    assert got[0] == (
        "Zoë & <Renée> \"quoted\" 'x'",
        3,
        True,
        dt.datetime(2024, 2, 29),
        dt.datetime(2026, 3, 29, 1, 30, 15),
        0.8125,
    )
    assert got[1][0] == "bell and\ttab\nnewline"  # XML-illegal control character dropped
    assert got[1][1:3] == (-2, False) and got[1][4] == dt.datetime(2026, 12, 1, 23, 59, 59)
    assert got[2] == (None,) * 6
    assert got[3][0] == "=1+1" and ws["A5"].data_type == "s"  # a string, never a formula
    assert ws["D2"].number_format == "yyyy-mm-dd" and ws["E2"].number_format.startswith("yyyy")


def test_a_full_sheet_continues_on_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(xlsx, "MAX_ROWS", 4)  # header + 3 rows a sheet
    path = tmp_path / "big.xlsx"
    table = TableWriter(path, "Leads", ["i"], [NUMBER])
    table.write_rows((i,) for i in range(8))
    table.close()
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Leads", "Leads (2)", "Leads (3)"]
    values = [[r[0] for r in ws.iter_rows(min_row=2, values_only=True)] for ws in wb.worksheets]
    assert values == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert all(ws["A1"].value == "i" for ws in wb.worksheets)


def test_an_empty_table_is_a_valid_workbook(tmp_path: Path):
    path = tmp_path / "empty.xlsx"
    table = TableWriter(path, "Lessons", ["title"], [TEXT])
    table.close()
    ws = openpyxl.load_workbook(path)["Lessons"]
    assert [c.value for c in ws[1]] == ["title"] and ws.max_row == 1


def test_every_part_is_well_formed_xml_of_the_package(tmp_path: Path):
    path = tmp_path / "x.xlsx"
    table = TableWriter(path, "Conversations", ["content"], [TEXT])
    table.write_rows(
        [("a < b & c > d",), ("]]> <![CDATA[ x",), ("\u00e9\u4e2d\U0001f600",), ("x" * 40000,)]
    )
    table.close()
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        assert {
            "[Content_Types].xml",
            "_rels/.rels",
            "xl/workbook.xml",
            "xl/_rels/workbook.xml.rels",
            "xl/styles.xml",
            "xl/worksheets/sheet1.xml",
        } <= names
        for name in names:
            ElementTree.fromstring(z.read(name))  # raises on malformed XML
    ws = openpyxl.load_workbook(path)["Conversations"]
    assert [r[0] for r in ws.iter_rows(min_row=2, values_only=True)] == [
        "a < b & c > d",
        "]]> <![CDATA[ x",
        "\u00e9\u4e2d\U0001f600",
        "x" * 32767,  # Excel holds at most 32,767 characters in a cell
    ]
