"""A streaming multipart/form-data receiver for uploads: the file part goes straight to disk
while its bytes are counted, so an oversized upload is refused at the cap instead of after
being read whole (Starlette's form parsing spools the entire body before a route runs)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header

from dbr.datasets.errors import BadCsv, TooLarge

MAX_FIELD_BYTES = 4096


@dataclass
class ReceivedUpload:
    path: Path | None
    filename: str | None
    size: int
    fields: dict[str, str] = field(default_factory=dict)


def _clean_filename(raw: str) -> str:
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:255] or "upload.csv"


class UploadReceiver:
    def __init__(
        self,
        content_type: str | None,
        dest_dir: Path,
        max_file_bytes: int,
        file_field: str = "file",
    ) -> None:
        ctype, params = parse_options_header(content_type or "")
        boundary = params.get(b"boundary")
        if ctype != b"multipart/form-data" or not boundary:
            raise BadCsv(
                "Send the file as multipart/form-data with a 'file' field.",
                details={"content_type": content_type},
            )
        self._dest_dir = dest_dir
        self._max = max_file_bytes
        self._file_field = file_field
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )
        self._headers: dict[bytes, bytes] = {}
        self._hname = b""
        self._hvalue = b""
        self._part_name: str | None = None
        self._field_buf = bytearray()
        self._out: IO[bytes] | None = None
        self.upload = ReceivedUpload(None, None, 0)

    # parser callbacks -------------------------------------------------------------------
    def _part_begin(self) -> None:
        self._headers = {}
        self._part_name = None
        self._field_buf = bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._hname.lower()] = self._hvalue
        self._hname, self._hvalue = b"", b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        self._part_name = name
        if name == self._file_field:
            if self._out is not None:
                raise BadCsv("Send one file per upload.")
            fd, tmp = tempfile.mkstemp(dir=self._dest_dir, prefix=".upload-")
            self._out = os.fdopen(fd, "wb")
            self.upload.path = Path(tmp)
            self.upload.filename = _clean_filename((filename or b"").decode("utf-8", "replace"))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part_name == self._file_field and self._out is not None:
            self.upload.size += end - start
            if self.upload.size > self._max:
                raise TooLarge(
                    f"The file is larger than the {self._max // (1024 * 1024)} MB limit.",
                    details={"max_bytes": self._max},
                )
            self._out.write(data[start:end])
        else:
            self._field_buf += data[start:end]
            if len(self._field_buf) > MAX_FIELD_BYTES:
                raise BadCsv(f"Form field {self._part_name!r} is too long.")

    def _part_end(self) -> None:
        if self._part_name == self._file_field and self._out is not None:
            self._out.close()
        elif self._part_name:
            self.upload.fields[self._part_name] = self._field_buf.decode("utf-8", "replace")

    # driving ----------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise BadCsv(f"The multipart body is malformed: {exc}") from exc

    def finish(self) -> ReceivedUpload:
        try:
            self._parser.finalize()
        except MultipartParseError as exc:
            raise BadCsv(f"The multipart body is malformed: {exc}") from exc
        if self._out is not None and not self._out.closed:
            self._out.close()
        return self.upload

    def discard(self) -> None:
        if self._out is not None and not self._out.closed:
            self._out.close()
        if self.upload.path is not None:
            self.upload.path.unlink(missing_ok=True)
