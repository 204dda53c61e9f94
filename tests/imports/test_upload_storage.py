"""The storage interface: local disk (atomic writes, safe keys, signed links) and Supabase
Storage through storage3 + streamed downloads, against an in-memory Storage API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from dbr.storage import CSV_UPLOADS, LocalStorage, StorageError, SupabaseStorage


class StorageApiStandin:
    """The few Storage API endpoints storage3 and our download use, kept in a dict."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.auth: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.auth.add(request.headers.get("authorization", ""))
        path = request.url.path.removeprefix("/storage/v1/")
        if request.method == "POST" and path.startswith("object/sign/"):
            key = path.removeprefix("object/sign/")
            return httpx.Response(200, json={"signedURL": f"/object/sign/{key}?token=t"})
        if request.method == "POST" and path.startswith("object/"):
            body = request.read()
            # multipart: keep the file part's bytes
            boundary = request.headers["content-type"].split("boundary=")[1].encode()
            part = next(p for p in body.split(b"--" + boundary) if b'name="file"' in p)
            self.objects[path.removeprefix("object/")] = part.split(b"\r\n\r\n", 1)[1][:-2]
            return httpx.Response(200, json={"Key": path, "Id": "1"})
        if request.method == "GET" and path.startswith("object/"):
            data = self.objects.get(path.removeprefix("object/"))
            return httpx.Response(200, content=data) if data is not None else httpx.Response(404)
        if request.method == "DELETE" and path.startswith("object/"):
            bucket = path.removeprefix("object/")
            for key in json.loads(request.read())["prefixes"]:
                self.objects.pop(f"{bucket}/{key}", None)
            return httpx.Response(200, json=[])
        return httpx.Response(400, json={"message": "unexpected", "error": "x", "statusCode": 400})


def test_supabase_backend_round_trip(tmp_path: Path):
    api = StorageApiStandin()
    http = httpx.Client(transport=httpx.MockTransport(api))
    store = SupabaseStorage("http://sb.test", "service-key", tmp_path / "tmp", http=http)
    src = tmp_path / "leads.csv"
    src.write_bytes(b"First Name,Phone\nAnn,07911 123451\n" * 1000)
    store.put_file(CSV_UPLOADS, "client/abc.csv", src)
    assert api.objects["csv_uploads/client/abc.csv"] == src.read_bytes()
    with store.open(CSV_UPLOADS, "client/abc.csv") as path:
        assert path.read_bytes() == src.read_bytes()
    assert not path.exists()  # the temporary download is removed
    assert store.url(CSV_UPLOADS, "client/abc.csv") == (
        "http://sb.test/storage/v1/object/authenticated/csv_uploads/client/abc.csv"
    )
    assert "token=" in store.signed_url(CSV_UPLOADS, "client/abc.csv", 60)
    store.delete(CSV_UPLOADS, "client/abc.csv")
    assert api.objects == {}
    assert api.auth == {"Bearer service-key"}
    with pytest.raises(StorageError), store.open(CSV_UPLOADS, "client/abc.csv"):
        pass


def test_local_backend(tmp_path: Path):
    store = LocalStorage(tmp_path, "secret")
    src = tmp_path / "in.csv"
    src.write_text("a,b\n")
    store.put_file(CSV_UPLOADS, "c1/u1.csv", src)
    with store.open(CSV_UPLOADS, "c1/u1.csv") as path:
        assert path.read_text() == "a,b\n"
    assert store.exists(CSV_UPLOADS, "c1/u1.csv")
    url = store.signed_url(CSV_UPLOADS, "c1/u1.csv", 60)
    expires = int(url.split("expires=")[1].split("&")[0])
    token = url.split("token=")[1]
    assert store.verify_signature(CSV_UPLOADS, "c1/u1.csv", expires, token)
    assert not store.verify_signature(CSV_UPLOADS, "c1/u2.csv", expires, token)
    for bad in ("../etc/passwd", "/abs", "a//b", ""):
        with pytest.raises(StorageError):
            store.put_file(CSV_UPLOADS, bad, src)
    with pytest.raises(StorageError):
        store.put_file("other_bucket", "x.csv", src)
    store.delete(CSV_UPLOADS, "c1/u1.csv")
    assert not store.exists(CSV_UPLOADS, "c1/u1.csv")
