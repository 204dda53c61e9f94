"""Errors the dataset import raises, each carrying the HTTP status the API answers with.

They live here (not in `api/`) because the CLI raises the same ones from the same code; each is
a `dbr.errors.DbrError`, so FastAPI answers it in its one handler.
"""

from __future__ import annotations

from dbr.errors import DbrError, Forbidden, NotFound


class DatasetError(DbrError):
    """A dataset request that cannot be served (400 unless a subclass says otherwise)."""

    status = 400


class NotCsv(DatasetError):
    """The content is not a CSV file (binary, a workbook, undecodable text)."""

    status = 415


class BadCsv(DatasetError):
    """The content is text but not a usable CSV (empty, no header, broken quoting)."""

    status = 400


class TooLarge(DatasetError):
    status = 413


class MappingError(DatasetError):
    status = 400


class DatasetNotFound(NotFound, DatasetError):
    """The dataset or upload does not exist or is not the caller's client's."""


class ImportForbidden(Forbidden, DatasetError):
    """The caller may not upload or import (no active membership, read-only role)."""
