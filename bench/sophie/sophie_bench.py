"""Sophie cost benchmark: what reviewing 1,000 outbound messages costs through the Message
Batches API against one Messages API request each, and the share of input tokens served from
the prompt cache, through the production request builder, the real SDK and the stand-in.

The review contexts come from the database exactly as the workers read them: a fresh database
(all migrations), `--clients` clients with their default prompts and `--lessons` lessons made
live each, leads with a first message and a reply, and `private.sophie_context` per message.
The stand-in answers (its deterministic Sophie) and reports usage with cache reads and writes
from the requests' `cache_control` breakpoints (1,024-token minimum, 5-minute entries).

Ways, in one run:
  naive        one request per message, no cache breakpoints, standard price
  per-request  one request per message as `sophie.analyze` sends it (rubric and client block
               cached), spaced `--spacing` seconds apart on a simulated clock, standard price
  batch        every message in one Message Batch as the 15-minute job sends it (same
               requests), batch price (half); caching in a batch is best effort on the real API,
               the stand-in serves it as it does for single requests

    .venv/bin/python -m bench.sophie.sophie_bench [--messages 1000] [--clients 10]
        [--lessons 8] [--model claude-sonnet-4-6] [--spacing 20]

Target: batch cost <= 55% of per-request cost. Prices: dbr.sophie.costs (Sonnet list prices).
"""

from __future__ import annotations

import argparse
import copy
import time
from decimal import Decimal
from typing import Any

import anthropic
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from dbr.ai.claude import USAGE_KEYS, usage_of
from dbr.dev import stack, testdb
from dbr.dev.standins.anthropic import AnthropicStandin
from dbr.settings import get_settings
from dbr.sophie.costs import cache_share, cost_usd
from dbr.sophie.prompt import review_request

TARGET = Decimal("0.55")

LESSONS = [
    ("objection_handling", "Price questions", "Lead asks how much", "Offer a short call"),
    ("tone", "Warm and short", "Every message", "Two sentences, friendly"),
    ("compliance", "Opt-out line", "First message", "Always include Reply STOP"),
    ("timing", "Evenings", "Lead says they work days", "Offer times after 6pm"),
    ("booking", "Two slots", "Lead is interested", "Offer two concrete times"),
    ("dos_donts", "No pressure", "Any follow-up", "Never say last chance"),
    ("other", "Survey", "Lead asks who we are", "Mention the original enquiry"),
    ("other", "Names", "Every message", "Use the first name"),
]
TEXTS = [
    "Hi {name}, it's Acme Windows. Are you still thinking about new windows?",
    "Hi {name}, Acme here - we can definately help with your sash windows. Reply STOP to opt out",
    "Dear customer, act now: our last chance offer ends today! Reply STOP to opt out",
    "Hi {name}, would Tuesday at 10am or Thursday at 4pm suit for a quick call?",
]


def _contexts(url: str, *, clients: int, messages: int, lessons: int) -> list[dict[str, Any]]:
    per_client = messages // clients
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as db:
        db.execute("update public.clients set settings = settings")  # warm
        out: list[dict[str, Any]] = []
        for c in range(clients):
            client_id = db.execute(
                "insert into public.clients (name, settings) values (%s, %s) returning id",
                (f"Client {c}", Jsonb({"sophie_auto_review": False})),
            ).fetchone()["id"]
            dataset_id = db.execute(
                "insert into public.datasets (client_id, name) values (%s, 'Old enquiries')"
                " returning id",
                (client_id,),
            ).fetchone()["id"]
            for kind, title, trigger, do in LESSONS[:lessons]:
                db.execute(
                    "insert into public.lessons (client_id, lesson_type, title, trigger,"
                    " correct_response, reasoning) values (%s, %s, %s, %s, %s, %s)",
                    (client_id, kind, title, trigger, do, f"Staff found {title.lower()} works."),
                )
            # make_prompt_live as an admin of the client, as staff would.
            admin = db.execute(
                "insert into auth.users (id, aud, role, email) values (gen_random_uuid(),"
                " 'authenticated', 'authenticated', %s) returning id",
                (f"admin{c}@bench.test",),
            ).fetchone()["id"]
            db.execute(
                "insert into public.client_members (client_id, user_id, role, status, email)"
                " values (%s, %s, 'admin', 'active', %s)",
                (client_id, admin, f"admin{c}@bench.test"),
            )
            db.execute("begin")
            db.execute(
                "select set_config('request.jwt.claims', %s, true),"
                " set_config('role', 'authenticated', true)",
                (f'{{"sub": "{admin}", "role": "authenticated"}}',),
            )
            db.execute("select public.make_prompt_live('reply')")
            db.execute("commit")
            ids = db.execute(
                "with l as (insert into public.leads"
                " (client_id, dataset_id, first_name, phone_number)"
                " select %s, %s, 'Lead' || g, '+4477' || lpad((%s * 100000 + g)::text, 8, '0')"
                " from generate_series(1, %s) g returning id, client_id, dataset_id, first_name),"
                " cv as (insert into public.conversations (client_id, dataset_id, lead_id)"
                " select client_id, dataset_id, id from l returning id, lead_id)"
                " insert into public.messages (client_id, dataset_id, conversation_id, lead_id,"
                " direction, message_category, status, content, sent_at)"
                " select l.client_id, l.dataset_id, cv.id, l.id, 'outbound', 'm1', 'sent',"
                " replace((%s::text[])[1 + (row_number() over () %% 4)], '{name}', l.first_name),"
                " now()"
                " from l join cv on cv.lead_id = l.id returning id",
                (client_id, dataset_id, c, per_client, TEXTS),
            ).fetchall()
            for row in ids:
                ctx = db.execute(
                    "select private.sophie_context(%s, null) as r", (row["id"],)
                ).fetchone()["r"]
                out.append(ctx)
        return out


def _strip_cache(params: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(params)
    for block in out["system"]:
        block.pop("cache_control", None)
    return out


def _sum(a: dict[str, int], b: dict[str, int]) -> None:
    for k in USAGE_KEYS:
        a[k] += b.get(k, 0)


def _per_request(requests: list[dict[str, Any]], spacing: float, *, cache: bool) -> dict[str, int]:
    clock = [0.0]
    total = dict.fromkeys(USAGE_KEYS, 0)
    with AnthropicStandin(clock=lambda: clock[0]) as fake:
        client = anthropic.Anthropic(api_key="sk-bench", base_url=fake.base_url, max_retries=0)
        for i, params in enumerate(requests):
            clock[0] = i * spacing
            message = client.messages.create(**(params if cache else _strip_cache(params)))
            _sum(total, usage_of(message))
        client.close()
    return total


def _batch(requests: list[dict[str, Any]]) -> dict[str, int]:
    total = dict.fromkeys(USAGE_KEYS, 0)
    with AnthropicStandin() as fake:
        fake.batches_api.set_polls_before_end(0)
        client = anthropic.Anthropic(api_key="sk-bench", base_url=fake.base_url, max_retries=0)
        batch = client.messages.batches.create(
            requests=[{"custom_id": f"r{i}", "params": p} for i, p in enumerate(requests)]  # type: ignore[misc]
        )
        while client.messages.batches.retrieve(batch.id).processing_status != "ended":
            time.sleep(0.01)
        for line in client.messages.batches.results(batch.id):
            assert line.result.type == "succeeded", line.result
            _sum(total, usage_of(line.result.message))
        client.close()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--lessons", type=int, default=8)
    parser.add_argument("--model", default="claude-sonnet-4-6")
    parser.add_argument("--spacing", type=float, default=20.0, help="seconds between reviews")
    args = parser.parse_args()

    settings = get_settings()
    name, url = testdb.create_test_database(settings, "benchsophie")
    t0 = time.perf_counter()
    try:
        contexts = _contexts(
            url, clients=args.clients, messages=args.messages, lessons=args.lessons
        )
    finally:
        stack.drop_database(stack.database_url(settings), name)
    # Reviews in the order they happen: messages of all clients interleaved.
    contexts.sort(key=lambda c: str(c["message_id"]))
    requests = [review_request(c, model=args.model) for c in contexts]
    t1 = time.perf_counter()
    ways = {
        "naive": (_per_request(requests, args.spacing, cache=False), False),
        "per-request": (_per_request(requests, args.spacing, cache=True), False),
        "batch": (_batch(requests), True),
    }
    t2 = time.perf_counter()
    n = len(requests)
    print(
        f"{n} reviews of first messages, {args.clients} clients, {args.lessons} lessons live each,"
        f" model {args.model}, per-request reviews {args.spacing:g}s apart"
        f" (setup {t1 - t0:.0f}s, requests {t2 - t1:.0f}s)"
    )
    print(
        f"{'way':<12} {'input':>9} {'cached':>9} {'written':>9} {'output':>8}"
        f" {'cached%':>8} {'$/1000':>9}"
    )
    cost: dict[str, Decimal] = {}
    for way, (usage, batch) in ways.items():
        inp = (
            usage["input_tokens"]
            + usage["cache_creation_input_tokens"]
            + usage["cache_read_input_tokens"]
        )
        cost[way] = cost_usd(args.model, usage, batch=batch) * 1000 / n
        print(
            f"{way:<12} {inp / 1e6:>8.2f}M {usage['cache_read_input_tokens'] / 1e6:>8.2f}M"
            f" {usage['cache_creation_input_tokens'] / 1e6:>8.2f}M"
            f" {usage['output_tokens'] / 1e6:>7.2f}M"
            f" {cache_share(usage) * 100:>7.1f}% ${cost[way]:>8.2f}"
        )
    ratio = cost["batch"] / cost["per-request"]
    # Caching inside a real batch is best effort: with only the per-request cache hits the
    # batch still costs half, which is the worst case.
    worst = (
        cost_usd(args.model, ways["per-request"][0], batch=True) * 1000 / n / cost["per-request"]
    )
    verdict = "MEETS" if max(ratio, worst) <= TARGET else "MISSES"
    print(
        f"batch / per-request cost: {ratio:.2f} (with only the per-request cache hits: "
        f"{worst:.2f}; target <= {TARGET}): {verdict}; batch / naive: "
        f"{cost['batch'] / cost['naive']:.2f}; cached share: batch "
        f"{cache_share(ways['batch'][0]) * 100:.1f}%, per-request "
        f"{cache_share(ways['per-request'][0]) * 100:.1f}%"
    )


if __name__ == "__main__":
    main()
