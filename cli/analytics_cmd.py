"""`dbr analytics [--dataset ID]`: the dashboard's overview and campaign progress in a terminal.

Reads exactly what a frontend reads: the public RPCs `analytics_overview` and
`campaign_progress`, called as a member (RLS decides what is counted). Heavy imports
(psycopg, rich, the RPC caller) happen inside the command, so `dbr --help` stays fast.
"""

from __future__ import annotations

import uuid
from typing import Any

import typer

from cli import app

BAR_WIDTH = 28
BLOCKS = " ▏▎▍▌▋▊▉█"


def bar(value: float, top: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of `width` cells for value/top, in eighths of a cell."""
    if top <= 0 or value <= 0:
        return ""
    eighths = round(min(value / top, 1.0) * width * 8)
    full, rest = divmod(eighths, 8)
    return "█" * full + (BLOCKS[rest] if rest else "")


def _member(conn: Any, dataset: uuid.UUID | None, email: str | None) -> Any:
    from dbr.auth import Caller

    if email:
        row = conn.execute(
            """select u.id, u.email from auth.users u
               join public.client_members m on m.user_id = u.id and m.status = 'active'
               where lower(u.email) = lower(%s)""",
            (email,),
        ).fetchone()
        if row is None:
            raise typer.BadParameter(f"no active member with email {email!r}", param_hint="--as")
    elif dataset:
        row = conn.execute(
            """select m.user_id as id, m.email from public.datasets d
               join public.client_members m on m.client_id = d.client_id
               where d.id = %s and m.role = 'admin' and m.status = 'active'
               order by m.created_at, m.user_id limit 1""",
            (dataset,),
        ).fetchone()
        if row is None:
            raise typer.BadParameter(
                "dataset not found, or its client has no active admin (use --as)",
                param_hint="--dataset",
            )
    else:
        raise typer.BadParameter("name a member with --as EMAIL, or a dataset with --dataset")
    claims = {"sub": str(row["id"]), "role": "authenticated", "aud": "authenticated"}
    if row["email"]:
        claims["email"] = row["email"]
    return Caller(user_id=row["id"], role="authenticated", claims=claims)


def overview_tables(overview: dict[str, Any], title: str) -> list[Any]:
    """The overview as rich renderables: metrics, breakdowns, and the per-day bars."""
    from rich.table import Table

    m = overview["metrics"]
    sent = m["messages_sent"]
    metrics = Table(title=title, show_header=False, title_justify="left")
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    for label, value in (
        ("leads", f"{m['total_leads']:,}"),
        ("active leads", f"{m['active_leads']:,}"),
        ("hot leads", f"{m['hot_leads']:,}"),
        ("messages sent", f"{sent['total']:,}"),
        ("  M1 / M2 / M3", f"{sent['m1']:,} / {sent['m2']:,} / {sent['m3']:,}"),
        ("  AI responses", f"{sent['ai_responses']:,}"),
        ("replies received", f"{m['replies_received']:,}"),
        ("reply rate", f"{m['reply_rate']}%"),
        ("calls booked", f"{m['calls_booked']:,}"),
        ("converted", f"{m['converted']:,}"),
        ("conversion rate", f"{m['conversion_rate']}%"),
    ):
        metrics.add_row(label, value)

    breakdown = Table("status", "leads", "", title="Lead status", title_justify="left")
    statuses = {k: v for k, v in overview["status_breakdown"].items() if v}
    top = max(statuses.values(), default=0)
    for status, n in sorted(statuses.items(), key=lambda kv: -kv[1]):
        breakdown.add_row(status, f"{n:,}", bar(n, top, 16))
    sentiments = Table("sentiment", "leads", title="Sentiment", title_justify="left")
    for sentiment in ("HOT", "POSITIVE", "NEUTRAL", "UNCLEAR", "NEGATIVE"):
        sentiments.add_row(sentiment, f"{overview['sentiment_breakdown'].get(sentiment, 0):,}")

    trends = overview["trends"]
    days = Table(
        "day", "messages", "", "replies", "bookings", title="Per day", title_justify="left"
    )
    replies = {d["date"]: d["count"] for d in trends["daily_replies"]}
    bookings = {d["date"]: d["count"] for d in trends["daily_bookings"]}
    daily = trends["daily_messages"][-31:]
    peak = max((d["count"] for d in daily), default=0)
    for d in daily:
        days.add_row(
            d["date"],
            f"{d['count']:,}",
            bar(d["count"], peak),
            f"{replies.get(d['date'], 0):,}",
            f"{bookings.get(d['date'], 0):,}",
        )
    return [metrics, breakdown, sentiments, days]


def progress_table(progress: dict[str, Any]) -> Any:
    """One campaign's progress per step, with a bar of how far each step has gone."""
    from rich.table import Table

    p = progress["campaign_progress"]
    eta = p["estimated_completion"] or f"— ({p['estimate']['reason']})"
    t = p["totals"]
    table = Table(
        "step",
        "waiting",
        "queued",
        "sent",
        "delivered",
        "undeliv.",
        "failed",
        "replies",
        "reply %",
        "opt-outs",
        "",
        title=f"Campaign: {p['name']} ({p['campaign_status']})",
        caption=(
            f"{t['messaged']:,} of {t['leads']:,} leads messaged, reply rate {t['reply_rate']}%, "
            f"opt-out rate {t['opt_out_rate']}%, delivery errors {t['delivery_error_rate']}%; "
            f"estimated completion {eta}"
        ),
        title_justify="left",
    )
    for s in p["steps"]:
        done = s["sent"] + s["delivered"] + s["undelivered"] + s["failed"]
        table.add_row(
            s["step"],
            f"{s['waiting']:,}",
            f"{s['queued']:,}",
            f"{s['sent']:,}",
            f"{s['delivered']:,}",
            f"{s['undelivered']:,}",
            f"{s['failed']:,}",
            f"{s['replies']:,}",
            f"{s['reply_rate']}",
            f"{s['opt_outs']:,}",
            bar(done, done + s["waiting"] + s["queued"], 12),
        )
    return table


@app.command()
def analytics(
    dataset: uuid.UUID | None = typer.Option(None, "--dataset", help="One dataset (default: all)."),
    time_range: str = typer.Option("month", "--range", help="today | week | month | all"),
    as_email: str | None = typer.Option(
        None, "--as", help="Member to read as (default with --dataset: the client's first admin)."
    ),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Default: SUPABASE_DB_URL / settings.database_url."
    ),
) -> None:
    """Print the analytics overview and campaign progress, as a member sees them."""
    import psycopg
    from psycopg.rows import dict_row
    from rich.console import Console

    from dbr.rpc import RpcError, call_rpc
    from dbr.settings import get_settings

    console = Console()
    url = database_url or get_settings().database_url
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        caller = _member(conn, dataset, as_email)
        try:
            body: dict[str, Any] = {"time_range": time_range}
            if dataset:
                body["dataset_id"] = str(dataset)
            overview = call_rpc(conn, caller, "analytics_overview", body)
            if dataset:
                ids = [str(dataset)]
            else:
                listed = call_rpc(conn, caller, "list_datasets", {})
                ids = [d["id"] for d in listed["datasets"] if d["campaign_status"] != "draft"]
            progress = [
                call_rpc(conn, caller, "campaign_progress", {"dataset_id": i}) for i in ids[:10]
            ]
        except RpcError as exc:
            console.print(f"[red]HTTP {exc.status}: {exc.message}[/]")
            raise typer.Exit(1) from exc
    scope = progress[0]["campaign_progress"]["name"] if dataset else "all datasets"
    for renderable in overview_tables(overview, f"Overview: {scope}, {time_range}"):
        console.print(renderable)
    for p in progress:
        console.print(progress_table(p))
    if not progress:
        console.print("No campaign has started yet.")
