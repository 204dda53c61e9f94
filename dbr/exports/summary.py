"""The analytics summary export: the dashboard's overview as a file.

The figures are the overview's (`public.analytics_overview(dataset_id, time_range)`, the RPC
behind GET /api/analytics/overview), read as the member who asked, so they cover exactly the
datasets that member may see, in the client's local days.

- CSV: the daily table, one row per local day: `date, messages_sent, replies_received,
  calls_booked` (the row count is the number of days).
- XLSX: sheet "Summary" (what was exported, when, the metrics, the sentiment and status
  breakdowns) and sheet "Daily" (the same daily table) with two native Excel charts drawn
  from its cells: a line chart of messages sent and replies per day, a column chart of calls
  booked per day.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dbr.exports import queries
from dbr.exports.cells import neutralise
from dbr.exports.writers import UTF8_BOM, xlsx_workbook

DAILY_COLUMNS = ("date", "messages_sent", "replies_received", "calls_booked")

_METRICS = (
    ("Total leads", ("total_leads",)),
    ("Active leads", ("active_leads",)),
    ("M1 sent", ("messages_sent", "m1")),
    ("M2 sent", ("messages_sent", "m2")),
    ("M3 sent", ("messages_sent", "m3")),
    ("AI responses sent", ("messages_sent", "ai_responses")),
    ("Messages sent", ("messages_sent", "total")),
    ("Replies received", ("replies_received",)),
    ("Reply rate (%)", ("reply_rate",)),
    ("Hot leads", ("hot_leads",)),
    ("Calls booked", ("calls_booked",)),
    ("Converted", ("converted",)),
    ("Conversion rate (%)", ("conversion_rate",)),
)


def fetch_overview(conn: psycopg.Connection[Any], params: dict[str, Any]) -> dict[str, Any]:
    """The overview as the connection's caller sees it."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "select public.analytics_overview(%s::uuid, %s) as r",
            (params.get("dataset_id"), params.get("time_range") or "all"),
        ).fetchone()
    assert row is not None
    return row["r"]


def daily_rows(overview: dict[str, Any]) -> list[tuple[dt.date, int, int, int]]:
    """The three daily trends side by side, one row per local day, in date order."""
    trends = overview.get("trends") or {}
    table: dict[str, list[int]] = {}
    for i, key in enumerate(("daily_messages", "daily_replies", "daily_bookings")):
        for point in trends.get(key) or []:
            table.setdefault(str(point["date"])[:10], [0, 0, 0])[i] = int(point["count"])
    return [(dt.date.fromisoformat(day), *counts) for day, counts in sorted(table.items())]  # type: ignore[misc]


def _dig(metrics: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = metrics
    for key in path:
        value = (value or {}).get(key)
    return value


def write_summary(
    conn: psycopg.Connection[Any], params: dict[str, Any], fmt: str, path: Path
) -> int:
    """Writes the summary file; returns the number of days in its daily table."""
    overview = fetch_overview(conn, params)
    days = daily_rows(overview)
    if fmt == "csv":
        with path.open("wb") as raw:
            raw.write(UTF8_BOM)
        with path.open("a", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(DAILY_COLUMNS)
            out.writerows((d.isoformat(), m, r, b) for d, m, r, b in days)
        return len(days)
    scope = _scope(conn, params)
    _write_xlsx(path, overview, days, scope)
    return len(days)


def _scope(conn: psycopg.Connection[Any], params: dict[str, Any]) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(queries.SUMMARY_SCOPE, (params.get("dataset_id"),)).fetchone()
    assert row is not None
    return {**row, "time_range": params.get("time_range") or "all"}


def _write_xlsx(
    path: Path,
    overview: dict[str, Any],
    days: list[tuple[dt.date, int, int, int]],
    scope: dict[str, Any],
) -> None:
    wb = xlsx_workbook(path)
    try:
        bold = wb.add_format({"bold": True})
        title = wb.add_format({"bold": True, "font_size": 14})
        day_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
        moment = wb.add_format({"num_format": "yyyy-mm-dd hh:mm", "align": "left"})

        ws = wb.add_worksheet("Summary")
        ws.set_column(0, 0, 24)
        ws.set_column(1, 1, 18)
        ws.write_string(0, 0, "Analytics summary", title)
        facts = (
            ("Dataset", neutralise(scope["dataset"]) if scope["dataset"] else "All datasets"),
            ("Time range", scope["time_range"]),
            ("Time zone", scope["tz"]),
        )
        for r, (label, value) in enumerate(facts, start=1):
            ws.write_string(r, 0, label, bold)
            ws.write_string(r, 1, value)
        ws.write_string(4, 0, "Generated", bold)
        ws.write_datetime(4, 1, scope["now"], moment)

        r = 6
        ws.write_string(r, 0, "Metric", bold)
        ws.write_string(r, 1, "Value", bold)
        metrics = overview.get("metrics") or {}
        for label, key in _METRICS:
            r += 1
            ws.write_string(r, 0, label)
            value = _dig(metrics, key)
            if value is not None:
                ws.write_number(r, 1, float(value))
        for heading, breakdown in (
            ("Sentiment", overview.get("sentiment_breakdown") or {}),
            ("Status", overview.get("status_breakdown") or {}),
        ):
            r += 2
            ws.write_string(r, 0, heading, bold)
            ws.write_string(r, 1, "Leads", bold)
            for name, count in breakdown.items():
                r += 1
                ws.write_string(r, 0, neutralise(str(name)))
                ws.write_number(r, 1, float(count or 0))

        daily = wb.add_worksheet("Daily")
        daily.freeze_panes(1, 0)
        daily.set_column(0, 0, 12)
        daily.set_column(1, 3, 17)
        for c, name in enumerate(("Date", "Messages sent", "Replies received", "Calls booked")):
            daily.write_string(0, c, name, bold)
        for i, (day, sent, replies, booked) in enumerate(days, start=1):
            daily.write_datetime(i, 0, dt.datetime.combine(day, dt.time()), day_fmt)
            daily.write_number(i, 1, sent)
            daily.write_number(i, 2, replies)
            daily.write_number(i, 3, booked)
        last = max(len(days), 1)

        line = wb.add_chart({"type": "line"})
        for col, colour in ((1, "#1F77B4"), (2, "#FF7F0E")):
            line.add_series(
                {
                    "name": ["Daily", 0, col],
                    "categories": ["Daily", 1, 0, last, 0],
                    "values": ["Daily", 1, col, last, col],
                    "line": {"color": colour, "width": 2},
                }
            )
        line.set_title({"name": "Messages sent and replies per day"})
        line.set_x_axis({"date_axis": True, "num_format": "dd mmm"})
        line.set_y_axis({"name": "Messages", "min": 0})
        daily.insert_chart(1, 5, line, {"x_scale": 1.6, "y_scale": 1.2})

        bars = wb.add_chart({"type": "column"})
        bars.add_series(
            {
                "name": ["Daily", 0, 3],
                "categories": ["Daily", 1, 0, last, 0],
                "values": ["Daily", 1, 3, last, 3],
                "fill": {"color": "#2CA02C"},
            }
        )
        bars.set_title({"name": "Calls booked per day"})
        bars.set_x_axis({"date_axis": True, "num_format": "dd mmm"})
        bars.set_y_axis({"min": 0})
        bars.set_legend({"none": True})
        daily.insert_chart(20, 5, bars, {"x_scale": 1.6, "y_scale": 1.0})
    finally:
        wb.close()
