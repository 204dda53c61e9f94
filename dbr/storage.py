"""File storage behind one interface: local disk by default, Supabase Storage when configured.

Buckets: `csv_uploads` (uploaded lead lists) and `exports` (generated reports). Keys are
`<client_id>/<object id>.<ext>`, so a bucket listing never mixes tenants. Files move as
streams both ways: an upload is put from a file on disk, and `open()` hands back a local
path (for Supabase, a temporary download written in chunks), never a whole file in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import httpx

from dbr.settings import Settings

CSV_UPLOADS = "csv_uploads"
EXPORTS = "exports"
BUCKETS = (CSV_UPLOADS, EXPORTS)


class StorageError(RuntimeError):
    pass


class Storage(Protocol):
    def incoming_dir(self) -> Path:
        """A local directory for files being received (same disk as local objects)."""
        ...

    def put_file(self, bucket: str, key: str, src: Path, content_type: str = ...) -> None: ...

    def open(self, bucket: str, key: str) -> AbstractContextManager[Path]: ...

    def delete(self, bucket: str, key: str) -> None: ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def url(self, bucket: str, key: str) -> str: ...

    def signed_url(
        self, bucket: str, key: str, expires_in: int, download: str | None = None
    ) -> str: ...


def _check(bucket: str, key: str) -> None:
    if bucket not in BUCKETS:
        raise StorageError(f"unknown bucket {bucket!r}")
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"invalid object key {key!r}")


class LocalStorage:
    """Objects as files under `root/<bucket>/<key>`; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path, secret: str) -> None:
        self.root = root
        self._secret = secret.encode()

    def _path(self, bucket: str, key: str) -> Path:
        _check(bucket, key)
        return self.root / bucket / key

    def incoming_dir(self) -> Path:
        d = self.root / ".incoming"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def put_file(self, bucket: str, key: str, src: Path, content_type: str = "text/csv") -> None:
        dest = self._path(bucket, key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @contextmanager
    def open(self, bucket: str, key: str) -> Iterator[Path]:
        path = self._path(bucket, key)
        if not path.is_file():
            raise StorageError(f"{bucket}/{key} does not exist")
        yield path

    def delete(self, bucket: str, key: str) -> None:
        self._path(bucket, key).unlink(missing_ok=True)

    def exists(self, bucket: str, key: str) -> bool:
        return self._path(bucket, key).is_file()

    def url(self, bucket: str, key: str) -> str:
        # Not downloadable over HTTP: the local backend has no file server.
        _check(bucket, key)
        return f"local://{bucket}/{quote(key)}"

    def _sign(self, bucket: str, key: str, expires: int) -> str:
        msg = f"{bucket}/{key}:{expires}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def signed_url(
        self, bucket: str, key: str, expires_in: int, download: str | None = None
    ) -> str:
        expires = int(time.time()) + expires_in
        return f"{self.url(bucket, key)}?expires={expires}&token={self._sign(bucket, key, expires)}"

    def sign(self, bucket: str, key: str, expires: int) -> str:
        """The HMAC token of a link to `bucket/key` valid until the Unix time `expires`, for
        routes that serve local files over HTTP (verified by `verify_signature`)."""
        _check(bucket, key)
        return self._sign(bucket, key, expires)

    def verify_signature(self, bucket: str, key: str, expires: int, token: str) -> bool:
        """For a route serving local signed links: the token matches and has not expired."""
        good = hmac.compare_digest(self._sign(bucket, key, expires).encode(), token.encode())
        return good and expires >= time.time()


class SupabaseStorage:
    """Supabase Storage through storage3 (upload, remove, signed links) with the service key;
    downloads stream with httpx because storage3's `download` returns the whole body."""

    def __init__(
        self, url: str, service_key: str, tmp_dir: Path, http: httpx.Client | None = None
    ) -> None:
        from storage3 import SyncStorageClient

        self._base = url.rstrip("/") + "/storage/v1"
        self._headers = {"apikey": service_key, "Authorization": f"Bearer {service_key}"}
        self._http = http or httpx.Client(timeout=60)
        self._client = SyncStorageClient(self._base + "/", self._headers, http_client=self._http)
        self._tmp = tmp_dir

    def incoming_dir(self) -> Path:
        self._tmp.mkdir(parents=True, exist_ok=True)
        return self._tmp

    def put_file(self, bucket: str, key: str, src: Path, content_type: str = "text/csv") -> None:
        _check(bucket, key)
        with src.open("rb") as f:
            self._client.from_(bucket).upload(key, f, {"content-type": content_type})  # type: ignore[arg-type]

    @contextmanager
    def open(self, bucket: str, key: str) -> Iterator[Path]:
        _check(bucket, key)
        fd, tmp = tempfile.mkstemp(dir=self.incoming_dir(), prefix=".dl-")
        path = Path(tmp)
        try:
            with (
                os.fdopen(fd, "wb") as out,
                self._http.stream(
                    "GET", f"{self._base}/object/{bucket}/{quote(key)}", headers=self._headers
                ) as resp,
            ):
                if resp.status_code != 200:
                    raise StorageError(f"download of {bucket}/{key} failed: {resp.status_code}")
                for chunk in resp.iter_bytes(1 << 20):
                    out.write(chunk)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def delete(self, bucket: str, key: str) -> None:
        _check(bucket, key)
        self._client.from_(bucket).remove([key])

    def exists(self, bucket: str, key: str) -> bool:
        _check(bucket, key)
        return bool(self._client.from_(bucket).exists(key))

    def url(self, bucket: str, key: str) -> str:
        _check(bucket, key)
        return f"{self._base}/object/authenticated/{bucket}/{quote(key)}"

    def signed_url(
        self, bucket: str, key: str, expires_in: int, download: str | None = None
    ) -> str:
        """A signed link; with `download`, the browser saves the file under that name."""
        _check(bucket, key)
        options = {"download": download} if download else None
        res = self._client.from_(bucket).create_signed_url(key, expires_in, options)  # type: ignore[arg-type]
        return str(res.get("signedURL") or res.get("signedUrl"))


def get_storage(settings: Settings) -> Storage:
    if settings.storage_backend == "supabase":
        if not settings.supabase_url or not settings.supabase_service_role_key:
            raise StorageError(
                "storage_backend=supabase needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY"
            )
        return SupabaseStorage(
            settings.supabase_url,
            settings.supabase_service_role_key,
            settings.storage_dir / ".incoming",
        )
    return LocalStorage(settings.storage_dir, settings.jwt_secret)
