"""Chaos bench: the suite's SIGKILL test (`tests/outreach/test_chaos_sends.py`) with more seeds,
trials and leads, printing one line of figures per seed and a total.

    .venv/bin/python -m bench.outreach.chaos_bench [--seeds 1-10] [--trials 20] [--leads 300]
        [--lease 3] [--latency 0.5] [--batch 10] [--concurrency 2] [--kill-within 5]
        [--kinds sms.send,sms.reconcile]

It runs the test through `bin/dbr test --only pytest` (the suite's own database, stand-in and
worker processes), with the knobs passed as CHAOS_* environment variables. `--kinds sms.send`
runs code that has no sms.reconcile handler (e.g. before issue 12) the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter

from dbr.settings import ROOT


def seeds(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.outreach.chaos_bench", description=__doc__)
    p.add_argument("--seeds", default="1-10")
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--leads", type=int, default=300)
    p.add_argument("--lease", type=int, default=3)
    p.add_argument("--latency", default="0.5", help="seconds, or lo,hi drawn per seed")
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--kill-within", type=float, default=5.0)
    p.add_argument("--drain", type=float, default=60.0)
    p.add_argument("--kinds", default="sms.send,sms.reconcile")
    args = p.parse_args(argv)
    env = {
        **os.environ,
        "CHAOS_SEEDS": ",".join(map(str, seeds(args.seeds))),
        "CHAOS_TRIALS": str(args.trials),
        "CHAOS_LEADS": str(args.leads),
        "CHAOS_LEASE": str(args.lease),
        "CHAOS_LATENCY": args.latency,
        "CHAOS_BATCH": str(args.batch),
        "CHAOS_CONCURRENCY": str(args.concurrency),
        "CHAOS_KILL_WITHIN": str(args.kill_within),
        "CHAOS_DRAIN": str(args.drain),
        "CHAOS_KINDS": args.kinds,
    }
    cmd = [str(ROOT / "bin" / "dbr"), "test", "--only", "pytest", "--"]
    cmd += ["tests/outreach/test_chaos_sends.py", "-q", "-s", "-p", "no:randomly"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    runs = [
        json.loads(line.split("CHAOS ", 1)[1])
        for line in proc.stdout.splitlines()
        if line.startswith("CHAOS ")
    ]
    keys = ("trials", "kills", "sent", "duplicates", "leads_without_message")
    keys += ("rows_disagreeing", "stuck_running", "reconciled", "lease_losses")
    print("seed " + " ".join(f"{k:>12}" for k in keys) + "  jobs")
    total: Counter[str] = Counter()
    for r in runs:
        print(f"{r['seed']:>4} " + " ".join(f"{r[k]:>12}" for k in keys) + f"  {r['jobs']}")
        total.update({k: r[k] for k in keys})
        total["dead"] += r["jobs"].get("dead", 0)
        total["failed_runs"] += bool(
            r["duplicates"]
            or r["leads_without_message"]
            or r["rows_disagreeing"]
            or r["jobs"] != {"done": r["leads"]}
        )
    print(f"total {dict(total)} over {len(runs)} seed(s)")
    if not runs:
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
