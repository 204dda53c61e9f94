"""Opt-out measurement: the labelled replies (tests/data/opt_out_replies.csv) through the real
inbound path in every AI mode, with the AI layer off and on, printing precision and recall.

For each mode (auto, suggest, off, manual = a lead in manual mode) a fresh client gets one lead
per labelled reply, and each reply arrives as Twilio would send it: form fields signed with
X-Twilio-Signature, POSTed to the twilio-webhook edge function (served by
`supabase/functions/_dev/serve.ts` with deno), which checks the signature and calls
`private.ingest_twilio_webhook` (`--via sql` makes that call directly, without deno).
"AI layer off" is what the database decided in that transaction (the phrase set; no AI job
run). "AI layer on" then runs every queued AI job through the real
handlers (ai.reply in auto/suggest, ai.classify_opt_out in off/manual) against the Anthropic
stand-in, and reads again which leads are opted out.

    .venv/bin/python -m bench.optout.run [--set tests/data/opt_out_replies.csv] [--modes auto,off]
        [--via edge|sql] [--ai-alone]

`--ai-alone` adds a second pass with the phrase set emptied (in the bench's own database): only
the whole-message keywords (private.sms_keyword) and the AI layer remain, which shows what the
AI layer catches on its own and what it would miss without the phrase set.

Needs the local PostgreSQL (`bin/dbr up` or any `bin/dbr test` run started it); builds or reuses
the migrations template and drops its database afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from dbr.dev import stack, testdb
from dbr.dev.standins.anthropic import AnthropicStandin
from dbr.dev.standins.twilio import inbound_params, sign
from dbr.providers.twilio import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from dbr.settings import Settings, get_settings
from tests.outreach import optout_data
from tests.support.ai import MODEL, inbound, lead_phone, make_lead, make_world, run_jobs
from tests.support.servers import serve_functions

MODES = ("auto", "suggest", "off", "manual")
RECALL_TARGET, FALSE_OPT_OUT_TARGET = 0.99, 0.01


def _opted_out(db: Any, lead_ids: list[Any]) -> list[bool]:
    rows = db.execute(
        "select l.opted_out from unnest(%s::uuid[]) with ordinality as x(id, i)"
        " join public.leads l on l.id = x.id order by x.i",
        (lead_ids,),
    ).fetchall()
    return [r["opted_out"] for r in rows]


def _new_lead(db: Any, world: Any) -> Any:
    for _ in range(5):  # make_lead draws a random number: retry the rare clash
        try:
            return make_lead(db, world)
        except psycopg.errors.UniqueViolation:
            continue
    raise RuntimeError("no free phone number")


Deliver = Callable[[Any, Any, Any, str], None]


def via_sql(db: Any, world: Any, lead_id: Any, text: str) -> None:
    inbound(db, world, lead_id, text)


@contextmanager
def via_edge(url: str, settings: Settings) -> Iterator[Deliver]:
    """The twilio-webhook edge function on a free port; yields a signed-POST deliverer."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve_functions(url, settings, Path(tmp) / "functions.log") as server,
        httpx.Client(timeout=30) as http,
    ):
        hook = server.twilio_webhook

        def deliver(db: Any, world: Any, lead_id: Any, text: str) -> None:
            params = inbound_params(
                account_sid=LOCAL_ACCOUNT_SID,
                from_=lead_phone(db, lead_id),
                to=world.number,
                body=text,
            )
            headers = {"X-Twilio-Signature": sign(LOCAL_AUTH_TOKEN, hook, params)}
            resp = http.post(hook, data=params, headers=headers)
            resp.raise_for_status()

        yield deliver


def run_mode(
    db: Any,
    url: str,
    settings: Any,
    claude: AnthropicStandin,
    mode: str,
    replies: list[Any],
    deliver: Deliver,
) -> tuple[list[bool], list[bool], float]:
    world = make_world(db, dataset_ai_mode="auto" if mode == "manual" else mode)
    t0 = time.perf_counter()
    lead_ids = []
    for reply in replies:
        lead_id = _new_lead(db, world)
        if mode == "manual":
            db.execute("update public.leads set manual_mode = true where id = %s", (lead_id,))
        deliver(db, world, lead_id, reply.text)
        lead_ids.append(lead_id)
    deterministic = _opted_out(db, lead_ids)
    run_jobs(
        url,
        settings,
        claude=claude,
        kinds=("ai.reply", "ai.classify_opt_out"),
        max_rounds=10_000,
    )
    with_ai = _opted_out(db, lead_ids)
    return deterministic, with_ai, time.perf_counter() - t0


def _verdict(f: optout_data.Figures) -> str:
    ok = f.recall >= RECALL_TARGET and f.false_opt_out_rate <= FALSE_OPT_OUT_TARGET
    return "met" if ok else "MISSED"


def measure(
    db: Any,
    url: str,
    settings: Any,
    claude: AnthropicStandin,
    modes: list[str],
    replies: list[Any],
    deliver: Deliver,
    label: str,
) -> dict[str, set[str]]:
    wrong: dict[str, set[str]] = {}
    for mode in modes:
        det, ai, secs = run_mode(db, url, settings, claude, mode, replies, deliver)
        fd, fa = optout_data.figures(replies, det), optout_data.figures(replies, ai)
        first, second = (
            ("phrase set", "phrase set + AI") if label == "" else ("keywords only", "keywords + AI")
        )
        print(f"{mode:<8} {first:<16} {fd}  {_verdict(fd)}")
        print(f"{'':<8} {second:<16} {fa}  {_verdict(fa)}   ({secs:.0f}s)")
        # Without the phrase set, only the AI pass is listed (keywords alone miss most forms).
        passes = ((first, det), (second, ai)) if label == "" else ((second, ai),)
        for layers, predicted in passes:
            for r, p in zip(replies, predicted, strict=True):
                if p != r.is_opt_out:
                    kind = "missed" if r.is_opt_out else "false opt-out"
                    key = f"{kind:<13} [{r.category}] {r.text!r}"
                    wrong.setdefault(key, set()).add(f"{mode}/{layers}")
    return wrong


def _print_wrong(wrong: dict[str, set[str]]) -> None:
    print("misclassified (mode/layers where it happens):")
    for key, where in sorted(wrong.items()):
        print(f"  {key}: {', '.join(sorted(where))}")
    if not wrong:
        print("  none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=optout_data.PATH)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--via", choices=("edge", "sql"), default="edge")
    parser.add_argument("--ai-alone", action="store_true")
    args = parser.parse_args()
    replies = optout_data.load(args.set)
    modes = [m for m in args.modes.split(",") if m]

    base = get_settings()
    name, url = testdb.create_test_database(base, "benchoptout")
    try:
        with (
            AnthropicStandin() as claude,
            psycopg.connect(url, autocommit=True, row_factory=dict_row) as db,
        ):
            settings = base.model_copy(
                update={
                    "database_url": url,
                    "anthropic_api_key": None,
                    "anthropic_base_url": claude.base_url,
                    "anthropic_model": MODEL,
                }
            )
            counts = Counter(r.is_opt_out for r in replies)
            print(
                f"{args.set.name}: {len(replies)} replies, {counts[True]} opt-outs, "
                f"{counts[False]} not; via {args.via}; targets recall >= {RECALL_TARGET:.0%}, "
                f"false opt-outs <= {FALSE_OPT_OUT_TARGET:.0%}"
            )
            with via_edge(url, base) if args.via == "edge" else _nullcontext(via_sql) as deliver:
                _print_wrong(measure(db, url, settings, claude, modes, replies, deliver, ""))
                if args.ai_alone:
                    db.execute("delete from private.opt_out_phrases")
                    print("-- the same without the phrase set (AI layer alone):")
                    _print_wrong(
                        measure(db, url, settings, claude, modes, replies, deliver, "alone")
                    )
    finally:
        stack.drop_database(stack.database_url(base), name)


@contextmanager
def _nullcontext(value: Deliver) -> Iterator[Deliver]:
    yield value


if __name__ == "__main__":
    main()
