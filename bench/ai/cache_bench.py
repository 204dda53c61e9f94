"""AI prompt-cache benchmark: input tokens served from cache per 1,000 conversations of 6 turns,
and what they cost at list prices, through the real request builder and the Anthropic stand-in.

The prompt comes from the database exactly as production reads it: a fresh database (all
migrations), a client with its default prompts, a set of lessons made live with
`make_prompt_live`, and `private.ai_context` for the shared parts. Leads and their replies are
synthetic (seeded), the AI's answers are the stand-in's. Time is simulated: conversations start
every `--spacing` seconds, each lead answers after a random 1-30 minute gap, and the stand-in's
cache clock follows, so the per-lead breakpoint only hits when a lead answers within the
5-minute cache lifetime, as in production.

Four ways in the same run:
  naive       the same requests without cache_control (nothing cached)
  shared-only only the first breakpoint (system prompt + lessons)
  ours        dbr.ai.prompting.build_request: breakpoint after system prompt + lessons (shared
              by every lead of the client), second breakpoint after the lead's stable facts
  no-lessons  ours, with no lessons live (the smallest prefix a new client has)

    .venv/bin/python -m bench.ai.cache_bench [--conversations 1000] [--turns 6]
        [--lessons 10] [--model claude-sonnet-4-6] [--spacing 6]

Prices assumed (USD per million tokens, Sonnet-class list prices): input 3.00, cache write
(5 min) 3.75, cache read 0.30, output 15.00. Target (issue 5): >= 80% of input tokens from cache.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anthropic
import psycopg
from psycopg.rows import dict_row

from dbr.ai.claude import usage_of
from dbr.ai.context import ReplyContext
from dbr.ai.decision import TOOL_NAME
from dbr.ai.prompting import build_request, offered_slots
from dbr.dev import stack, testdb
from dbr.dev.standins.anthropic import AnthropicStandin
from dbr.settings import get_settings

PRICES = {"input": 3.00, "cache_write": 3.75, "cache_read": 0.30, "output": 15.00}
TARGET = 0.80

LESSONS = [
    (
        "objection_handling",
        "Price questions",
        "Lead asks how much it costs",
        "Say prices depend on the job and a short call gives an exact quote; offer times.",
        "Quoting a number by text",
    ),
    (
        "tone",
        "Mirror the lead's tone",
        "Lead writes very briefly",
        "Keep replies equally short and plain",
        "Long, formal paragraphs",
    ),
    (
        "timing",
        "Offer evenings to workers",
        "Lead mentions work or being busy in the day",
        "Offer the latest slots of the day first",
        None,
    ),
    (
        "booking",
        "Confirm the exact time",
        "Lead accepts a slot",
        "Repeat day, date and time in the confirmation",
        "Vague 'see you then'",
    ),
    (
        "compliance",
        "No pressure after a no",
        "Lead says not now or not interested",
        "Thank them and close the conversation politely",
        "Asking why or offering discounts",
    ),
    (
        "dos_donts",
        "One question per message",
        "Any reply",
        "End with exactly one question",
        "Stacking several questions",
    ),
    (
        "objection_handling",
        "Already sorted",
        "Lead says they already found someone",
        "Congratulate them and ask if they would like a check-up later in the year",
        None,
    ),
    ("tone", "No emojis", "Any reply", "Plain text only", "Emojis and exclamation chains"),
    (
        "booking",
        "Offer two or three slots",
        "Lead shows interest",
        "List two or three concrete times, never more",
        "Sending a booking link instead",
    ),
    (
        "other",
        "Remember earlier details",
        "Lead mentioned details before",
        "Refer back to them briefly",
        "Asking again for what they already said",
    ),
]

REPLIES = {
    "open": [
        "Hi, who is this?",
        "Oh yes I remember",
        "Hmm, what was this about?",
        "Yes still looking actually",
        "Sorry who?",
        "Maybe, depends on the price",
    ],
    "middle": [
        "How much would it be roughly?",
        "We're quite busy at the moment",
        "Ok tell me more",
        "Is it a big job?",
        "My husband deals with this usually",
        "What areas do you cover?",
        "Do you do weekends?",
        "Interested, when could we talk?",
    ],
    "close": [
        "Yes that works",
        "Could we do the afternoon one?",
        "Not right now thanks",
        "Ok sounds good",
        "I'll think about it",
        "Yes please book me in",
    ],
}
FIRST_NAMES = ["Sam", "Alex", "Priya", "Tom", "Grace", "Mo", "Ellie", "Jack", "Aisha", "Ben"]
NOTES = [
    "Asked about sash window replacement for a terraced house",
    "Wanted a quote for a conservatory roof",
    "Enquired about composite doors, front and back",
    "Needs double glazing for a new extension",
    "Asked about repair of misted units",
]


@dataclass
class Totals:
    requests: int = 0
    input: int = 0
    cache_write: int = 0
    cache_read: int = 0
    output: int = 0
    prompt_tokens: list[int] = field(default_factory=list)

    def add(self, usage: dict[str, int]) -> None:
        self.requests += 1
        self.input += usage["input_tokens"]
        self.cache_write += usage["cache_creation_input_tokens"]
        self.cache_read += usage["cache_read_input_tokens"]
        self.output += usage["output_tokens"]
        self.prompt_tokens.append(
            usage["input_tokens"]
            + usage["cache_creation_input_tokens"]
            + usage["cache_read_input_tokens"]
        )

    @property
    def all_input(self) -> int:
        return self.input + self.cache_write + self.cache_read

    @property
    def cached_share(self) -> float:
        return self.cache_read / self.all_input if self.all_input else 0.0

    def cost(self) -> float:
        return (
            self.input * PRICES["input"]
            + self.cache_write * PRICES["cache_write"]
            + self.cache_read * PRICES["cache_read"]
            + self.output * PRICES["output"]
        ) / 1_000_000


# ---------------------------------------------------------------------- database


def _prompt_context(url: str, lessons: int) -> dict[str, Any]:
    """The context JSON of one conversation of a fresh client with `lessons` live lessons."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as db:
        client = db.execute(
            "insert into public.clients (name, settings) values ('Brightview Windows', %s)"
            " returning id",
            (
                json.dumps(
                    {
                        "company_description": "Family-run window and door installer in "
                        "Leeds since 1998. FENSA registered; 10-year guarantee on installs."
                    }
                ),
            ),
        ).fetchone()["id"]
        admin = uuid.uuid4()
        db.execute(
            "insert into auth.users (id, aud, role, email) values (%s, 'authenticated',"
            " 'authenticated', 'bench@example.test')",
            (admin,),
        )
        db.execute(
            "insert into public.client_members (client_id, user_id, role, status, email)"
            " values (%s, %s, 'admin', 'active', 'bench@example.test')",
            (client, admin),
        )
        for i, (kind, title, trigger, do, avoid) in enumerate(LESSONS[:lessons]):
            db.execute(
                "insert into public.lessons (client_id, lesson_type, title, trigger,"
                " correct_response, incorrect_response, priority) values (%s,%s,%s,%s,%s,%s,%s)",
                (client, kind, title, trigger, do, avoid, 10 - i % 10),
            )
        with db.transaction():
            db.execute(
                "select set_config('role', 'authenticated', true),"
                " set_config('request.jwt.claims', %s, true)",
                (json.dumps({"sub": str(admin), "role": "authenticated"}),),
            )
            db.execute("select public.make_prompt_live('reply')")
        dataset = db.execute(
            "insert into public.datasets (client_id, name, source) values (%s,"
            " 'Enquiries 2023', 'website form') returning id",
            (client,),
        ).fetchone()["id"]
        lead = db.execute(
            "insert into public.leads (client_id, dataset_id, phone_number) values"
            " (%s, %s, '+447700900001') returning id",
            (client, dataset),
        ).fetchone()["id"]
        conv = db.execute(
            "insert into public.conversations (client_id, dataset_id, lead_id) values"
            " (%s, %s, %s) returning id",
            (client, dataset, lead),
        ).fetchone()["id"]
        return db.execute("select private.ai_context(%s) as c", (conv,)).fetchone()["c"]


# ---------------------------------------------------------------------- simulation


@dataclass(order=True)
class Turn:
    at: float
    conversation: int
    index: int


def _lead_context(base: dict[str, Any], k: int, rng: random.Random) -> dict[str, Any]:
    ctx = copy.deepcopy(base)
    ctx["conversation"]["id"] = f"conv-{k}"
    ctx["lead"].update(
        id=f"lead-{k}",
        first_name=FIRST_NAMES[k % len(FIRST_NAMES)],
        last_name=f"Lead{k}",
        notes=rng.choice(NOTES),
        inquiry_date=(datetime(2023, 1, 1) + timedelta(days=rng.randrange(600))).date().isoformat(),
        postcode=f"LS{rng.randrange(1, 29)} {rng.randrange(1, 9)}AB",
        custom_fields={"property": rng.choice(["terraced", "semi", "detached", "flat"])},
        contact_status="M1_SENT",
    )
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    ctx["messages"] = [
        {
            "id": f"m1-{k}",
            "direction": "outbound",
            "category": "m1",
            "content": f"Hi {ctx['lead']['first_name']}, it's Brightview Windows. You asked us "
            "about new windows a while back - are you still looking for help with that?",
            "at": start.isoformat(),
        }
    ]
    return ctx


def _script(rng: random.Random, turns: int) -> list[str]:
    out = [rng.choice(REPLIES["open"])]
    out += [rng.choice(REPLIES["middle"]) for _ in range(max(0, turns - 2))]
    out.append(rng.choice(REPLIES["close"]))
    return out[:turns]


def _variant(params: dict[str, Any], mode: str) -> dict[str, Any]:
    """The request as each way sends it: ours as built, naive without any breakpoint, shared-only
    without the per-lead breakpoint."""
    if mode == "ours":
        return params
    body = copy.deepcopy(params)
    blocks = body["system"] if mode == "naive" else body["system"][1:]
    for block in blocks:
        block.pop("cache_control", None)
    return body


def simulate(
    base: dict[str, Any],
    *,
    conversations: int,
    turns: int,
    model: str,
    spacing: float,
    seed: int,
    modes: tuple[str, ...] = ("ours", "naive", "shared-only"),
) -> dict[str, Totals]:
    rng = random.Random(seed)
    clock = [0.0]
    standins = {mode: AnthropicStandin(clock=lambda: clock[0]).start() for mode in modes}
    clients = {
        mode: anthropic.Anthropic(api_key="bench", base_url=standin.base_url, max_retries=0)
        for mode, standin in standins.items()
    }
    totals = {mode: Totals() for mode in standins}
    contexts = [_lead_context(base, k, rng) for k in range(conversations)]
    scripts = [_script(rng, turns) for _ in range(conversations)]
    # Every conversation's turns on one timeline: a reply 1-30 minutes after our last message.
    schedule: list[Turn] = []
    for k in range(conversations):
        at = k * spacing
        for j in range(turns):
            at += rng.uniform(60, 1800)
            schedule.append(Turn(at, k, j))
    schedule.sort()
    slot_starts = [datetime(2026, 12, 2, h, 0, tzinfo=UTC) for h in (10, 11, 14, 15, 16)]
    try:
        for turn in schedule:
            clock[0] = turn.at
            ctx_json = contexts[turn.conversation]
            when = datetime(2026, 12, 1, 9, 0, tzinfo=UTC) + timedelta(seconds=turn.at)
            ctx_json["messages"].append(
                {
                    "id": f"in-{turn.conversation}-{turn.index}",
                    "direction": "inbound",
                    "category": "lead_reply",
                    "content": scripts[turn.conversation][turn.index],
                    "at": when.isoformat(),
                }
            )
            ctx = ReplyContext.from_json(ctx_json)
            slots = offered_slots(slot_starts, ctx) if ctx.wants_slots() else None
            params = build_request(ctx, model=model, slots=slots, now=when)
            answer: dict[str, Any] | None = None
            for mode, client in clients.items():
                message = client.messages.create(**_variant(params, mode))
                totals[mode].add(usage_of(message))
                if mode == "ours":
                    answer = next(b.input for b in message.content if b.name == TOOL_NAME)
            assert answer is not None
            ctx_json["lead"]["contact_status"] = answer["contact_status"]
            ctx_json["messages"].append(
                {
                    "id": f"out-{turn.conversation}-{turn.index}",
                    "direction": "outbound",
                    "category": "ai_response",
                    "content": answer["reply_text"] or "(no reply)",
                    "at": (when + timedelta(seconds=60)).isoformat(),
                    "ai_generated": True,
                    "offered_slots": [s.iso for s in slots or []]
                    if answer["booking_intent"] == "offer_slots"
                    else None,
                }
            )
    finally:
        for standin in standins.values():
            standin.stop()
    return totals


def _row(name: str, t: Totals, per: float) -> str:
    return (
        f"{name:<12}{t.all_input * per / 1e6:>9.2f}M {t.cache_read * per / 1e6:>9.2f}M "
        f"{t.cache_write * per / 1e6:>8.2f}M {t.input * per / 1e6:>8.2f}M "
        f"{t.cached_share:>7.1%} {statistics.median(t.prompt_tokens):>8.0f} "
        f"${t.cost() * per:>9.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--lessons", type=int, default=10)
    parser.add_argument("--model", default="claude-sonnet-4-6")
    parser.add_argument("--spacing", type=float, default=6.0, help="seconds between conversations")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    settings = get_settings()
    name, url = testdb.create_test_database(settings, "benchai")
    t0 = time.perf_counter()
    try:
        with_lessons = _prompt_context(url, args.lessons)
        without = _prompt_context(url, 0)
    finally:
        stack.drop_database(stack.database_url(settings), name)
    run = dict(
        conversations=args.conversations,
        turns=args.turns,
        model=args.model,
        spacing=args.spacing,
        seed=args.seed,
    )
    t1 = time.perf_counter()
    ours = simulate(with_lessons, **run)
    bare = simulate(without, **run, modes=("ours",))["ours"]
    elapsed = time.perf_counter() - t1
    per = 1000 / args.conversations
    print(
        f"{args.conversations} conversations x {args.turns} turns, model {args.model}, "
        f"{args.lessons} lessons live, a new conversation every {args.spacing:g}s, "
        f"lead replies 1-30 min apart (database {t1 - t0:.0f}s, simulation {elapsed:.0f}s)"
    )
    print(
        "figures per 1,000 conversations; prices USD/MTok: "
        + ", ".join(f"{k} {v:.2f}" for k, v in PRICES.items())
    )
    print(
        f"{'way':<12}{'input':>10} {'cached':>10} {'written':>9} {'uncached':>9} "
        f"{'cached%':>7} {'med.tok':>8} {'cost':>10}"
    )
    print(_row("naive", ours["naive"], per))
    print(_row("shared-only", ours["shared-only"], per))
    print(_row("ours", ours["ours"], per))
    print(_row("no-lessons", bare, per))
    saving = 1 - ours["ours"].cost() / ours["naive"].cost()
    print(
        f"cost ours/naive: {ours['ours'].cost() / ours['naive'].cost():.2f} "
        f"({saving:.0%} cheaper); cached share {ours['ours'].cached_share:.1%} "
        f"(target >= {TARGET:.0%}: {'met' if ours['ours'].cached_share >= TARGET else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
