"""Helpers for the export tests: a tenant with datasets, leads and members of each kind, a
job runner for exports.* jobs, and readers for the files."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import openpyxl
import psycopg
from psycopg.types.json import Jsonb

from dbr.db import async_pool
from dbr.settings import Settings
from tests.support import make_client, make_user
from workers import handlers
from workers.jobs import HANDLERS, Context, Job

Conn = psycopg.Connection[Any]


@dataclass
class World:
    client_id: uuid.UUID
    ds1: uuid.UUID
    ds2: uuid.UUID
    admin: uuid.UUID
    manager: uuid.UUID
    restricted: uuid.UUID  # sales rep limited to ds1
    reader: uuid.UUID
    other_client: uuid.UUID
    other_admin: uuid.UUID
    other_ds: uuid.UUID
    leads: dict[str, uuid.UUID] = field(default_factory=dict)  # first name -> id


_n = 0


def phone() -> str:
    global _n
    _n += 1
    return f"+4479{uuid.uuid4().int % 10**6:06d}{_n % 100:02d}"


def make_dataset(db: Conn, client_id: uuid.UUID, name: str) -> uuid.UUID:
    return db.execute(
        "insert into public.datasets (client_id, name) values (%s, %s) returning id",
        (client_id, name),
    ).fetchone()["id"]


def make_lead(db: Conn, client_id: uuid.UUID, dataset_id: uuid.UUID, **cols: Any) -> uuid.UUID:
    fields = {"client_id": client_id, "dataset_id": dataset_id, "phone_number": phone(), **cols}
    keys = ", ".join(fields)
    marks = ", ".join(["%s"] * len(fields))
    return db.execute(
        f"insert into public.leads ({keys}) values ({marks}) returning id", list(fields.values())
    ).fetchone()["id"]


def make_world(db: Conn) -> World:
    client = make_client(db, "Acme exports")
    ds1 = make_dataset(db, client, "Spring list")
    ds2 = make_dataset(db, client, "Autumn list")
    other = make_client(db, "Globex exports")
    other_ds = make_dataset(db, other, "Globex list")
    world = World(
        client_id=client,
        ds1=ds1,
        ds2=ds2,
        admin=make_user(db, client, "admin"),
        manager=make_user(db, client, "manager"),
        restricted=make_user(
            db, client, "sales_rep", can_view_all_leads=False, allowed_dataset_ids=[ds1]
        ),
        reader=make_user(db, client, "read_only"),
        other_client=other,
        other_admin=make_user(db, other, "admin"),
        other_ds=other_ds,
    )
    for name, ds in (("Ann", ds1), ("Bea", ds1), ("Cal", ds2)):
        world.leads[name] = make_lead(db, client, ds, first_name=name, last_name="Smith")
    world.leads["Gus"] = make_lead(db, other, other_ds, first_name="Gus", last_name="Globex")
    return world


def add_message(
    db: Conn,
    lead_id: uuid.UUID,
    content: str,
    *,
    inbound: bool = False,
    status: str | None = None,
    category: str | None = None,
    days_ago: float = 0,
) -> None:
    """A message of the lead's conversation, sent (or received) `days_ago` days ago."""
    lead = db.execute(
        "select client_id, dataset_id from public.leads where id = %s", (lead_id,)
    ).fetchone()
    conv = db.execute(
        "insert into public.conversations (client_id, dataset_id, lead_id) values (%s, %s, %s)"
        " on conflict (lead_id) do update set status = excluded.status returning id",
        (lead["client_id"], lead["dataset_id"], lead_id),
    ).fetchone()["id"]
    status = status or ("received" if inbound else "sent")
    db.execute(
        "insert into public.messages (client_id, dataset_id, conversation_id, lead_id, direction,"
        " message_category, status, content, created_at, sent_at, received_at)"
        " select %s, %s, %s, %s, %s, %s, %s, %s, t,"
        " case when %s then t end, case when %s then t end"
        " from (select now() - make_interval(secs => %s * 86400) as t) x",
        (
            lead["client_id"],
            lead["dataset_id"],
            conv,
            lead_id,
            "inbound" if inbound else "outbound",
            category or ("lead_reply" if inbound else "human_manual"),
            status,
            content,
            not inbound and status in ("sent", "delivered"),
            inbound,
            days_ago,
        ),
    )


def run_export_jobs(settings: Settings, kinds: tuple[str, ...] = ("exports.build",)) -> list[Any]:
    """Runs every queued job of `kinds` now through the real handlers (claim, handler,
    complete or fail), until none is left; returns the handlers' results."""
    handlers.load(kinds)

    async def main() -> list[Any]:
        pool = async_pool(settings.database_url, min_size=1, max_size=2)
        await pool.open()
        ctx = Context(pool=pool, settings=settings, worker_id="exports-test")
        results: list[Any] = []
        try:
            while True:
                async with pool.connection() as conn:
                    rows = await (
                        await conn.execute(
                            "select * from private.claim_jobs('exports-test', %s, 5, 60)",
                            (list(kinds),),
                        )
                    ).fetchall()
                if not rows:
                    return results
                for row in rows:
                    job = Job.from_row(row)
                    try:
                        result = await HANDLERS[job.kind](job, ctx)
                    except Exception as exc:
                        async with pool.connection() as conn:
                            await conn.execute(
                                "select private.fail_job(%s, 'exports-test', %s, true, 0)",
                                (job.id, str(exc)),
                            )
                        results.append(exc)
                        continue
                    async with pool.connection() as conn:
                        await conn.execute(
                            "select private.complete_job(%s, 'exports-test', %s)",
                            (job.id, Jsonb(result) if result is not None else None),
                        )
                    results.append(result)
        finally:
            await pool.close()

    return asyncio.run(main())


class ExportWorker:
    """Runs exports.build jobs in a thread while the test thread waits on the API."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="export-jobs", daemon=True)
        self.results: list[Any] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            self.results.extend(run_export_jobs(self._settings))
            self._stop.wait(0.05)

    def __enter__(self) -> ExportWorker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def local_path(url: str) -> str:
    """The API path (with query) of a local signed link."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def csv_rows(content: bytes) -> list[dict[str, str]]:
    assert content.startswith(b"\xef\xbb\xbf"), "CSV starts with a UTF-8 byte-order mark"
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def xlsx_rows(content: bytes) -> tuple[Any, list[dict[str, Any]]]:
    """The workbook and its first sheet's rows as dicts (header = first row)."""
    wb = openpyxl.load_workbook(io.BytesIO(content))
    ws = wb.worksheets[0]
    values = list(ws.iter_rows(values_only=True))
    header = values[0]
    return wb, [dict(zip(header, row, strict=True)) for row in values[1:]]
