"""What a client's own credentials cost each send: Vault read per send (naive) vs the worker's
cache (ours) vs no lookup at all (floor: one `select 1` round trip, what any send pays anyway).

Builds 50 clients with their own Twilio account in Vault in a throw-away database, then asks
for a client's Twilio client the way the sender does (`ClientCredentials.twilio`), round robin,
and the same with a fresh Vault read (`private.integration_credentials`) every time.

    .venv/bin/python -m bench.team [--sends 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

from dbr.db import async_pool
from dbr.dev import stack, testdb
from dbr.settings import get_settings
from dbr.team.credentials import ClientCredentials, lookup

CLIENTS = 50
# What a send may spend on finding its credentials: a tenth of a millisecond at p95 (a send's
# own database work is a few milliseconds; Twilio's answer about 100-300 ms).
TARGET_P95_MS = 0.1


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def _run(url: str, sends: int) -> dict[str, list[float]]:
    settings = get_settings().model_copy(update={"database_url": url})
    pool = async_pool(url, min_size=1, max_size=2)
    await pool.open()
    ids: list[Any] = []
    async with pool.connection() as conn:
        for i in range(CLIENTS):
            row = await (
                await conn.execute(
                    "insert into public.clients (name) values (%s) returning id", (f"Bench {i}",)
                )
            ).fetchone()
            assert row is not None
            ids.append(row["id"])
            await conn.execute(
                "select private.store_integration(%s, 'twilio', %s::jsonb, %s::jsonb)",
                (
                    row["id"],
                    f'{{"auth_token": "{uuid.uuid4().hex}"}}',
                    f'{{"account_sid": "AC{uuid.uuid4().hex}"}}',
                ),
            )
    out: dict[str, list[float]] = {"floor": [], "naive": [], "ours": []}
    creds = ClientCredentials(pool, settings)
    try:
        for n in range(sends):
            client_id = ids[n % CLIENTS]
            t = time.perf_counter()
            async with pool.connection() as conn:
                await conn.execute("select 1")
            out["floor"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await lookup(pool, client_id, "twilio")
            out["naive"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await creds.twilio(client_id)
            out["ours"].append((time.perf_counter() - t) * 1000)
    finally:
        await creds.close()
        await pool.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=2000)
    args = parser.parse_args()
    settings = get_settings()
    name, url = testdb.create_test_database(settings, "benchteam")
    try:
        out = asyncio.run(_run(url, args.sends))
    finally:
        stack.drop_database(stack.database_url(settings), name)
    print(f"{args.sends} credential lookups over {CLIENTS} clients (ms per send)")
    print(f"{'':8} {'p50':>8} {'p95':>8} {'max':>8}")
    for kind in ("floor", "naive", "ours"):
        v = out[kind]
        print(f"{kind:8} {_pct(v, 50):8.3f} {_pct(v, 95):8.3f} {max(v):8.3f}")
    ours = _pct(out["ours"], 95)
    verdict = "MEETS" if ours <= TARGET_P95_MS else "MISSES"
    print(f"ours p95 {ours:.3f} ms vs target {TARGET_P95_MS} ms: {verdict}")
