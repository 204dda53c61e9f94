"""Errors the dataset import raises, each carrying the HTTP status the API answers with.

They live here (not in `api/`) because the CLI raises the same ones from the same code.
"""

from __future__ import annotations

from typing import Any


class DatasetError(Exception):
    status = 400
    code: str | None = None

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


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


class NotFound(DatasetError):
    status = 404


class Forbidden(DatasetError):
    status = 403
