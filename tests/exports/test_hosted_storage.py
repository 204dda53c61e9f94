"""On a hosted project: the file goes to Supabase Storage's `exports` bucket through storage3,
the link is Storage's signed URL (expiring with the file, saved under the export's name), and
the purge deletes the object through the Storage API. Against an in-memory Storage API stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from dbr.exports.service import build_export, download_url, purge_expired
from dbr.storage import SupabaseStorage
from tests.exports.support import make_world
from tests.imports.test_upload_storage import StorageApiStandin
from tests.support import acting_as


class SigningStorageApi(StorageApiStandin):
    """The Storage API stand-in, recording what each signing request asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.signed: list[dict] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.startswith("/storage/v1/object/sign/"):
            self.signed.append(json.loads(request.read()))
        return super().__call__(request)


def test_hosted_build_link_and_purge(db, export_settings, tmp_path: Path):
    world = make_world(db)
    with acting_as(db, world.restricted) as conn:
        export = conn.execute(
            "select private.request_export('leads', null, null, 'csv') as r"
        ).fetchone()["r"]
    api = SigningStorageApi()
    store = SupabaseStorage(
        "http://sb.test",
        "service-key",
        tmp_path / "tmp",
        http=httpx.Client(transport=httpx.MockTransport(api)),
    )
    done = build_export(export_settings, store, export["id"])
    assert done is not None and done["status"] == "ready" and done["rows"] == 2
    key = f"exports/{world.client_id}/{export['id']}.csv"
    body = api.objects[key].decode("utf-8-sig")
    assert body.splitlines()[0].startswith("lead_id,dataset,first_name")
    assert {line.split(",")[2] for line in body.splitlines()[1:]} == {"Ann", "Bea"}
    assert list((tmp_path / "tmp").iterdir()) == []  # the temporary file is gone

    url = download_url(export_settings, store, done)
    assert url is not None and "token=" in url
    (asked,) = api.signed
    assert asked["download"] == done["filename"]
    assert 24 * 3600 - 60 < int(asked["expiresIn"]) <= 24 * 3600  # expires with the file

    db.execute(
        "update public.exports set expires_at = now() - interval '1 second' where id = %s",
        (export["id"],),
    )
    assert purge_expired(export_settings, store) >= 1
    assert key not in api.objects
    status = db.execute(
        "select status::text as s from public.exports where id = %s", (export["id"],)
    ).fetchone()["s"]
    assert status == "expired"
