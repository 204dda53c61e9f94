"""exports.build and exports.purge: export files, built and deleted off the request path.

  exports.build  {"export_id": uuid}   build the file as the member who asked (dbr.exports):
                                       the rows RLS lets that member see, streamed to the
                                       exports bucket; on the job's last failed attempt the
                                       export is marked failed (its poller stops waiting)
  exports.purge  {}                    delete the files of expired exports (pg_cron enqueues
                                       it every 15 minutes when one has expired)

The writers are CPU-bound, so each runs in a thread with its own connection, leaving the
worker's event loop free. A run must fit in the job's lease (120 s by default): 100k leads
take a few seconds (bench/exports). Both are idempotent: a second delivery of a build finds
the export settled and does nothing; a purge deletes what is expired at that moment.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from dbr.exports.service import ExportGone, build_export, fail_export, purge_expired
from dbr.storage import Storage, get_storage
from workers.jobs import Context, Job, PermanentError, handler

log = logging.getLogger("workers.exports")


def _storage(ctx: Context) -> Storage:
    storage = ctx.clients.get("storage")
    if storage is None:
        storage = ctx.clients["storage"] = get_storage(ctx.settings)
    return storage


@handler("exports.build")
async def build(job: Job, ctx: Context) -> dict[str, Any] | None:
    export_id = str(job.payload["export_id"])
    try:
        done = await asyncio.to_thread(build_export, ctx.settings, _storage(ctx), export_id)
    except ExportGone as exc:
        await asyncio.to_thread(fail_export, ctx.settings, export_id, str(exc))
        raise PermanentError(str(exc)) from exc
    except Exception as exc:
        if job.last_attempt:
            await asyncio.to_thread(
                fail_export, ctx.settings, export_id, f"{type(exc).__name__}: {exc}"
            )
        raise
    if done is None:
        return {"export_id": export_id, "skipped": True}
    log.info("export %s ready: %s rows", export_id, done.get("rows"))
    return {"export_id": export_id, "rows": done.get("rows")}


@handler("exports.purge")
async def purge(job: Job, ctx: Context) -> dict[str, Any]:
    purged = await asyncio.to_thread(purge_expired, ctx.settings, _storage(ctx))
    return {"purged": purged}
