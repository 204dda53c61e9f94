"""The labelled opt-out replies (tests/data/opt_out_replies.csv), shared by the tests and
bench/optout."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

PATH = Path(__file__).resolve().parents[1] / "data" / "opt_out_replies.csv"


@dataclass(frozen=True)
class Reply:
    text: str
    is_opt_out: bool
    category: str


def load(path: Path = PATH) -> list[Reply]:
    with path.open(newline="", encoding="utf-8") as f:
        return [Reply(r["text"], r["is_opt_out"] == "1", r["category"]) for r in csv.DictReader(f)]


@dataclass(frozen=True)
class Figures:
    tp: int
    fn: int
    fp: int
    tn: int

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def false_opt_out_rate(self) -> float:
        """Share of replies that are not opt-outs but were treated as one."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    def __str__(self) -> str:
        return (
            f"recall {self.recall:7.2%}  precision {self.precision:7.2%}  "
            f"false opt-outs {self.false_opt_out_rate:6.2%}  "
            f"(tp {self.tp}, fn {self.fn}, fp {self.fp}, tn {self.tn})"
        )


def figures(replies: list[Reply], predicted: list[bool]) -> Figures:
    pairs = list(zip(replies, predicted, strict=True))
    return Figures(
        tp=sum(r.is_opt_out and p for r, p in pairs),
        fn=sum(r.is_opt_out and not p for r, p in pairs),
        fp=sum(not r.is_opt_out and p for r, p in pairs),
        tn=sum(not r.is_opt_out and not p for r, p in pairs),
    )
