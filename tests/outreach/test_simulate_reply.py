"""`dbr simulate reply` plays a lead texting back. A number may be a lead in several clients
(the same person on two companies' lists): the reply goes to the client named with `--client`
(id or name) or `--to-number` (the client's Twilio number, which is how a real inbound SMS
finds its client), and an ambiguous `--to` is refused instead of guessed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cli import app
from dbr.settings import get_settings
from tests.support.outreach import make_dataset, make_lead, make_sender, random_number


@pytest.fixture
def run(db_url, functions_server, monkeypatch):
    """`dbr simulate reply ARGS` as a person types it (in-process, against the test stack)."""
    monkeypatch.setenv("SUPABASE_DB_URL", db_url)
    monkeypatch.setenv("PUBLIC_WEBHOOK_BASE_URL", functions_server.base_url)
    monkeypatch.setenv("FUNCTIONS_PORT", str(functions_server.port))
    for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    get_settings.cache_clear()

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, ["simulate", "reply", *args])

    yield run
    get_settings.cache_clear()


@pytest.fixture
def two_clients(db):
    """One phone number that is a lead of two clients (created A first, then B)."""
    phone = random_number()
    a, b = make_sender(db, service=False), make_sender(db, service=False)
    lead_a = make_lead(db, a, make_dataset(db, a.client_id), phone, first_name="Ann")
    lead_b = make_lead(db, b, make_dataset(db, b.client_id), phone, first_name="Ann")
    return phone, (a, lead_a), (b, lead_b)


def said(cli: Result) -> str:
    """The CLI's output without the error panel's borders and line wrapping."""
    return "".join(ch for ch in cli.output if not ch.isspace() and ch not in "│╭╮╰╯─")


def inbound_to(db, phone: str) -> list[dict[str, Any]]:
    return db.execute(
        "select client_id, lead_id, content from public.messages"
        " where direction = 'inbound' and from_number = %s order by created_at",
        (phone,),
    ).fetchall()


def test_a_number_that_is_a_lead_in_two_clients_is_refused_without_the_client(db, run, two_clients):
    phone, (a, _), (b, _) = two_clients
    cli = run("--to", phone, "--text", "Yes please")
    assert cli.exit_code != 0
    out = said(cli)
    assert "--client" in out and "--to-number" in out
    assert str(a.client_id) in out and str(b.client_id) in out
    assert inbound_to(db, phone) == []


def test_the_client_by_name_id_or_twilio_number_decides(db, run, two_clients):
    phone, (a, lead_a), (b, lead_b) = two_clients
    name_a = db.execute("select name from public.clients where id = %s", (a.client_id,)).fetchone()
    cli = run("--to", phone, "--client", name_a["name"].upper(), "--text", "first")
    assert cli.exit_code == 0, cli.output
    cli = run("--to", phone, "--client", str(b.client_id), "--text", "second")
    assert cli.exit_code == 0, cli.output
    cli = run("--to", phone, "--to-number", a.number, "--text", "third")
    assert cli.exit_code == 0, cli.output
    assert [(m["client_id"], m["lead_id"], m["content"]) for m in inbound_to(db, phone)] == [
        (a.client_id, lead_a, "first"),
        (b.client_id, lead_b, "second"),
        (a.client_id, lead_a, "third"),
    ]


def test_contradictions_and_unknowns_are_refused(db, run, two_clients):
    phone, (a, lead_a), (b, _) = two_clients
    for args, says in [
        (["--to", str(lead_a), "--client", str(b.client_id)], "belongs to"),
        (["--to", phone, "--client", "No such company"], "no client"),
        (["--to", phone, "--to-number", random_number("+4470009")], "no client"),
        (["--to", phone, "--client", str(a.client_id), "--to-number", b.number], "not the number"),
    ]:
        cli = run(*args, "--text", "hello")
        assert cli.exit_code != 0, args
        assert "".join(says.split()) in said(cli), (args, cli.output)
    assert inbound_to(db, phone) == []


def test_a_number_in_one_client_needs_nothing_more(db, run):
    sender = make_sender(db, service=False)
    phone = random_number()
    lead = make_lead(db, sender, make_dataset(db, sender.client_id), phone)
    cli = run("--to", phone, "--text", "Yes!")
    assert cli.exit_code == 0, cli.output
    assert [(m["lead_id"], m["content"]) for m in inbound_to(db, phone)] == [(lead, "Yes!")]


def test_a_unique_start_of_the_client_name_is_enough(db, run, two_clients):
    phone, (a, lead_a), _ = two_clients
    unique = "Zed " + uuid.uuid4().hex[:8]
    db.execute("update public.clients set name = %s where id = %s", (unique + " Ltd", a.client_id))
    cli = run("--client", unique.lower(), "--to", phone, "--text", "hi")
    assert cli.exit_code == 0, cli.output
    assert [(m["lead_id"], m["content"]) for m in inbound_to(db, phone)] == [(lead_a, "hi")]
    # "Sender " starts both clients' names: refused, both listed.
    cli = run("--client", "sender", "--to", phone, "--text", "hi again")
    assert cli.exit_code != 0 and "clientsmatch" in said(cli), cli.output
