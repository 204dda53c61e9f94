"""`dbr workers` (the job worker pool in the foreground) and `dbr simulate reply` (play a lead:
a correctly signed inbound SMS webhook posted to the local twilio-webhook function)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from cli import app

if TYPE_CHECKING:
    import httpx
    import psycopg

    from dbr.settings import Settings


console = Console(stderr=True)
simulate = typer.Typer(help="Play the outside world against the local stack.", no_args_is_help=True)
app.add_typer(simulate, name="simulate")


@app.command("workers")
def workers_command(
    concurrency: int = typer.Option(None, help="Job loops (default WORKER_CONCURRENCY)."),
    batch: int = typer.Option(5, help="Jobs claimed per loop per round."),
    kinds: str = typer.Option("", help="Comma-separated job kinds (default: every handler)."),
    grace: float = typer.Option(20.0, help="Seconds running jobs get to finish on Ctrl-C."),
) -> None:
    """Run the job worker pool in the foreground (Ctrl-C stops it gracefully)."""
    from dbr.settings import get_settings
    from workers import configure_logging, serve

    configure_logging()
    asyncio.run(
        serve(
            get_settings(),
            concurrency=concurrency or None,
            kinds=kinds.split(","),
            batch_size=batch,
            grace_seconds=grace,
        )
    )


_LEAD_SQL = """
select l.id, l.client_id, l.phone_number, l.first_name, l.last_name, c.name as client_name,
       c.twilio_phone_number, c.twilio_messaging_service_sid
from public.leads l join public.clients c on c.id = l.client_id
"""
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def _phone(raw: str, region: str, what: str) -> str:
    from dbr.phones import to_e164

    phone = to_e164(raw, region) or (raw if _E164.fullmatch(raw) else None)
    if not phone:
        raise typer.BadParameter(f"{raw!r} is not {what}")
    return phone


def find_client(
    conn: psycopg.Connection[Any],
    client: str | None,
    to_number: str | None,
    region: str = "GB",
) -> dict[str, Any] | None:
    """The client named by `--client` (id or name) and/or `--to-number` (its Twilio number)."""
    found = None
    if client:
        try:
            rows = conn.execute(
                "select id, name, twilio_phone_number from public.clients where id = %s",
                (uuid.UUID(client),),
            ).fetchall()
        except ValueError:
            # The exact name (any case), else the clients whose name starts with it ("acme").
            rows = (
                conn.execute(
                    "select id, name, twilio_phone_number from public.clients"
                    " where lower(name) = lower(%s) order by created_at",
                    (client.strip(),),
                ).fetchall()
                or conn.execute(
                    "select id, name, twilio_phone_number from public.clients"
                    " where starts_with(lower(name), lower(%s)) order by created_at",
                    (client.strip(),),
                ).fetchall()
            )
        if not rows:
            raise typer.BadParameter(f"no client {client!r} (give its id, name or a name's start)")
        if len(rows) > 1:
            names = "; ".join(f"{r['name']} ({r['id']})" for r in rows)
            raise typer.BadParameter(f"{len(rows)} clients match {client!r}: {names}. Give the id.")
        found = rows[0]
    if to_number:
        number = _phone(to_number, region, "a phone number")
        if found is not None:
            if found["twilio_phone_number"] != number:
                raise typer.BadParameter(
                    f"{number} is not the number of {found['name']} "
                    f"({found['twilio_phone_number'] or 'none'})"
                )
        else:
            found = conn.execute(
                "select id, name, twilio_phone_number from public.clients"
                " where twilio_phone_number = %s",
                (number,),
            ).fetchone()
            if found is None:
                raise typer.BadParameter(f"no client has the Twilio number {number}")
    return found


def find_lead(
    conn: psycopg.Connection[Any],
    to: str,
    region: str = "GB",
    *,
    client: str | None = None,
    to_number: str | None = None,
) -> dict[str, Any]:
    """The lead named by id, or by phone number within the client given by `client` (id or
    name) or `to_number` (its Twilio number). A number that is a lead in several clients is
    refused without one of them; within a client the most recently updated lead is shown
    (the inbound SMS itself is matched by the database as Twilio's would be)."""
    target = find_client(conn, client, to_number, region)
    try:
        lead_id: uuid.UUID | None = uuid.UUID(to)
    except ValueError:
        lead_id = None
    if lead_id is None:
        phone = _phone(to, region, "a lead id nor a phone number")
        rows = conn.execute(
            _LEAD_SQL + " where l.phone_number = %s"
            " and (%s::uuid is null or l.client_id = %s::uuid)"
            " order by l.updated_at desc",
            (phone, target and target["id"], target and target["id"]),
        ).fetchall()
        clients = {r["client_id"]: r["client_name"] for r in rows}
        if len(clients) > 1:
            listed = "; ".join(f"{name} ({cid})" for cid, name in clients.items())
            raise typer.BadParameter(
                f"{phone} is a lead in {len(clients)} clients: {listed}. Say which with "
                "--client <id or name> or --to-number <the client's Twilio number>."
            )
        row = rows[0] if rows else None
        if row is None:
            where = f" in {target['name']}" if target else ""
            raise typer.BadParameter(f"no lead with the number {phone}{where}")
    else:
        row = conn.execute(_LEAD_SQL + " where l.id = %s", (lead_id,)).fetchone()
        if not row:
            raise typer.BadParameter(f"no lead {to}")
        if target is not None and row["client_id"] != target["id"]:
            raise typer.BadParameter(
                f"lead {to} belongs to {row['client_name']} ({row['client_id']}), "
                f"not to {target['name']} ({target['id']})"
            )
    if not (row["twilio_phone_number"] or row["twilio_messaging_service_sid"]):
        raise typer.BadParameter(
            f"{row['client_name']} has no Twilio number or messaging service to reply to"
        )
    return row


def post_reply(
    settings: Settings, lead: dict[str, Any], text: str, *, url: str | None = None
) -> tuple[httpx.Response, dict[str, str]]:
    """POST the inbound webhook Twilio would send, signed for the public webhook URL."""
    import httpx

    from dbr.dev.standins.twilio import inbound_params, sign
    from dbr.providers import twilio as twilio_provider

    sid, _token = twilio_provider.credentials(settings)
    params = inbound_params(
        account_sid=sid,
        from_=lead["phone_number"],
        # A messaging-service client may have no number of its own: the service SID finds it.
        to=lead["twilio_phone_number"] or "+15005550006",
        body=text,
        messaging_service_sid=lead["twilio_messaging_service_sid"],
    )
    signature = sign(
        twilio_provider.webhook_auth_token(settings), twilio_provider.webhook_url(settings), params
    )
    resp = httpx.post(
        url or twilio_provider.local_functions_url(settings),
        data=params,
        headers={"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"},
        timeout=15,
    )
    return resp, params


@simulate.command("reply")
def simulate_reply(
    to: str = typer.Option(..., "--to", help="Lead id, or the lead's phone number."),
    text: str = typer.Option(..., "--text", help="What the lead texts back."),
    client: str = typer.Option(
        None,
        "--client",
        help="The client (id or name) whose lead texts back; needed when the number is a lead "
        "in several clients.",
    ),
    to_number: str = typer.Option(
        None,
        "--to-number",
        help="The client's Twilio number the lead texts (how a real SMS finds its client).",
    ),
    url: str = typer.Option(None, help="Webhook URL (default: the local twilio-webhook function)."),
) -> None:
    """Text back as a lead: Twilio's signed inbound webhook, posted to the local function."""
    import httpx
    import psycopg
    from psycopg.rows import dict_row

    from dbr.settings import get_settings

    settings = get_settings()
    with psycopg.connect(settings.database_url, autocommit=True, row_factory=dict_row) as conn:
        lead = find_lead(conn, to, client=client, to_number=to_number)
        try:
            resp, params = post_reply(settings, lead, text, url=url)
        except httpx.HTTPError as exc:
            console.print(f"[red]could not reach the webhook ({exc}); is `dbr up` running?[/]")
            raise typer.Exit(1) from exc
        name = " ".join(p for p in (lead["first_name"], lead["last_name"]) if p) or "lead"
        console.print(f"{name} {lead['phone_number']} -> {params['To']}: {text!r}")
        if resp.status_code != 200:
            console.print(f"[red]webhook answered {resp.status_code}: {resp.text[:300]}[/]")
            raise typer.Exit(1)
        time.sleep(0.2)
        row = conn.execute(
            "select m.conversation_id, j.kind, j.run_at from public.messages m"
            " left join private.jobs j on j.idempotency_key = 'ai.reply:' || m.id"
            " where m.twilio_sid = %s",
            (params["MessageSid"],),
        ).fetchone()
    console.print(f"[green]stored[/] as {params['MessageSid']}")
    if row and row["conversation_id"]:
        console.print(f"  conversation {row['conversation_id']}")
    if row and row["kind"]:
        console.print(f"  ai.reply job queued for {row['run_at']:%H:%M:%S}")
