"""Opt-out measurement: the labelled replies (tests/data/opt_out_replies.csv) through the real
inbound path in every AI mode, with the AI layer off and on, printing precision and recall.

For each mode (auto, suggest, off, manual = a lead in manual mode) a fresh client gets one lead
per labelled reply, and each reply arrives as Twilio's form fields through
`private.ingest_twilio_webhook`, exactly the call the twilio-webhook edge function makes after
checking the signature. "AI layer off" is what the database decided in that transaction (the
phrase set; no AI job run). "AI layer on" then runs every queued AI job through the real
handlers (ai.reply in auto/suggest, ai.classify_opt_out in off/manual) against the Anthropic
stand-in, and reads again which leads are opted out.

    .venv/bin/python -m bench.optout.run [--set tests/data/opt_out_replies.csv] [--modes auto,off]

Needs the local PostgreSQL (`bin/dbr up` or any `bin/dbr test` run started it); builds or reuses
the migrations template and drops its database afterwards.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dbr import stack, testdb
from dbr.fakes.anthropic import FakeAnthropic
from dbr.settings import get_settings
from tests import optout_data
from tests.ai_support import MODEL, inbound, make_lead, make_world, run_jobs

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


def run_mode(
    db: Any, url: str, settings: Any, claude: FakeAnthropic, mode: str, replies: list[Any]
) -> tuple[list[bool], list[bool], float]:
    world = make_world(db, dataset_ai_mode="auto" if mode == "manual" else mode)
    t0 = time.perf_counter()
    lead_ids = []
    for reply in replies:
        lead_id = _new_lead(db, world)
        if mode == "manual":
            db.execute("update public.leads set manual_mode = true where id = %s", (lead_id,))
        inbound(db, world, lead_id, reply.text)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=optout_data.PATH)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    replies = optout_data.load(args.set)
    modes = [m for m in args.modes.split(",") if m]

    base = get_settings()
    name, url = testdb.create_test_database(base, "benchoptout")
    try:
        with (
            FakeAnthropic() as claude,
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
                f"{counts[False]} not; targets recall >= {RECALL_TARGET:.0%}, "
                f"false opt-outs <= {FALSE_OPT_OUT_TARGET:.0%}"
            )
            wrong: dict[str, set[str]] = {}
            for mode in modes:
                det, ai, secs = run_mode(db, url, settings, claude, mode, replies)
                fd, fa = optout_data.figures(replies, det), optout_data.figures(replies, ai)
                print(f"{mode:<8} AI layer off  {fd}  {_verdict(fd)}")
                print(f"{'':<8} AI layer on   {fa}  {_verdict(fa)}   ({secs:.0f}s)")
                for label, predicted in (("off", det), ("on", ai)):
                    for r, p in zip(replies, predicted, strict=True):
                        if p != r.is_opt_out:
                            kind = "missed" if r.is_opt_out else "false opt-out"
                            key = f"{kind:<13} [{r.category}] {r.text!r}"
                            wrong.setdefault(key, set()).add(f"{mode}/AI {label}")
            print("misclassified (mode/AI layer where it happens):")
            for key, where in sorted(wrong.items()):
                print(f"  {key}: {', '.join(sorted(where))}")
            if not wrong:
                print("  none")
    finally:
        stack.drop_database(stack.database_url(base), name)


if __name__ == "__main__":
    main()
