"""A realistic messy lead list: what an old CRM or Excel export of a UK business looks like.

Mixed phone formats (national, +44, 0044, lost leading zero, "(0)", dashes, landlines), about
3% invalid and 1% empty phones, about 5% repeated numbers written differently, ALL-CAPS and
lower-case names, invalid emails, mixed date styles (UK, ISO, month names, a few US and junk),
quoted notes with commas and line breaks, blank lines and all-empty rows, an extra column.
Deterministic for a given seed.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import phonenumbers


def _words(text: str) -> list[str]:
    return text.split()


HEADER = [
    "Forename",
    "Surname",
    "Mobile",
    "E-mail Address",
    "Post Code",
    "Enquiry Date",
    "Notes",
    "Source",
]
FIRST = _words(
    "oliver george harry jack jacob noah charlie thomas oscar william james leo alfie henry "
    "joshua freddie archie ethan isaac alexander joseph edward samuel max daniel arthur lucas "
    "mohammed logan theo olivia amelia isla ava emily sophia grace mia poppy ella lily evie "
    "isabella sophie ivy freya harper willow charlotte jessica rosie daisy alice florence "
    "phoebe ruby matilda sienna evelyn scarlett chloe aisha priya wei anna maria zoë renée"
)
LAST = _words(
    "smith jones taylor brown williams wilson johnson davies patel robinson wright thompson "
    "evans walker white roberts green hall thomas clarke jackson wood harris edwards turner "
    "martin cooper hill ward hughes moore clark king harrison lewis baker lee allen morris "
    "o'neil mcdonald macleod fitzgerald smith-jones van-dyke d'souza nguyen kowalski müller"
)
DOMAINS = ["gmail.com", "yahoo.co.uk", "hotmail.com", "outlook.com", "btinternet.com"]
AREAS = ["SW1A", "M1", "B33", "LS1", "EH1", "CF10", "BS1", "NE1", "G2", "L1", "OX1", "CB2"]
SOURCES = ["", "", "Web form", "Facebook ad", "Referral", "Trade show", "Google"]
NOTES = [
    "",
    "",
    "",
    "Wants a call back",
    "Interested in finance options",
    "Asked about prices, budget £5k",
    "Called twice, no answer",
]
MONTHS = "January February March April May June July August September October November December"


def _mobile_prefixes() -> list[str]:
    """Five-digit UK mobile prefixes (7xxxx) that phonenumbers accepts as valid."""
    out = []
    for p in range(71000, 80000, 37):
        n = phonenumbers.parse(f"+44{p}12345", None)
        if phonenumbers.is_valid_number(n):
            out.append(str(p))
    return out


class Generator:
    def __init__(self, seed: int = 42) -> None:
        self.rng = random.Random(seed)
        self.prefixes = _mobile_prefixes()
        self.recent: list[str] = []

    def _national(self) -> str:
        r = self.rng
        return f"{r.choice(self.prefixes)}{r.randrange(100_000):05d}"  # 10 digits, no 0

    def phone(self) -> str:
        r = self.rng
        x = r.random()
        if x < 0.03:
            return r.choice(["12345", "n/a", "0791112345", "+44 1234", "call me", "0000000000"])
        if x < 0.04:
            return ""
        if x < 0.09 and self.recent:
            nsn = r.choice(self.recent)  # the same person again, maybe written differently
        elif x < 0.19:
            nsn = f"20{r.randrange(70_000_000, 79_999_999)}"  # London landline
        else:
            nsn = self._national()
            if len(self.recent) < 5000:
                self.recent.append(nsn)
            else:
                self.recent[r.randrange(5000)] = nsn
        y = r.random()
        if y < 0.40:
            return f"0{nsn[:4]} {nsn[4:]}"
        if y < 0.55:
            return f"+44 {nsn[:4]} {nsn[4:]}"
        if y < 0.62:
            return f"44{nsn}"
        if y < 0.68:
            return f"0044 {nsn}"
        if y < 0.80:
            return nsn  # Excel dropped the leading zero
        if y < 0.86:
            return f"+44 (0){nsn[:4]} {nsn[4:]}"
        if y < 0.93:
            return f"0{nsn[:4]}-{nsn[4:7]}-{nsn[7:]}"
        return f"0{nsn}"

    def name(self, pool: list[str]) -> str:
        r = self.rng
        n = r.choice(pool)
        x = r.random()
        if x < 0.15:
            return n.upper()
        if x < 0.25:
            return n
        if x < 0.28:
            return f"  {n.title()}  "
        return n.title()

    def email(self, first: str, last: str) -> str:
        r = self.rng
        x = r.random()
        if x < 0.2:
            return ""
        if x < 0.27:
            return r.choice(["none", "john at gmail", "x@y", "n/a", "test@@example.com"])
        local = f"{first.strip().lower()}.{last.strip().lower()}{r.randrange(1000)}"
        return f"{local.replace(' ', '')}@{r.choice(DOMAINS)}"

    def postcode(self) -> str:
        r = self.rng
        if r.random() < 0.2:
            return ""
        letters = "ABDEFGHJLNPQRSTUWXYZ"
        pc = f"{r.choice(AREAS)} {r.randrange(10)}{r.choice(letters)}{r.choice(letters)}"
        return pc.lower().replace(" ", "") if r.random() < 0.2 else pc

    def date(self) -> str:
        r = self.rng
        y, m, d = r.randrange(2015, 2025), r.randrange(1, 13), r.randrange(1, 29)
        x = r.random()
        if x < 0.40:
            return f"{d:02d}/{m:02d}/{y}"
        if x < 0.70:
            return f"{y}-{m:02d}-{d:02d}"
        if x < 0.80:
            return f"{d} {MONTHS.split()[m - 1]} {y}"
        if x < 0.85:
            return f"{m:02d}/{max(d, 13)}/{y}"  # US style, unambiguous
        if x < 0.95:
            return f"{d:02d}/{m:02d}/{y % 100:02d}"
        if x < 0.97:
            return r.choice(["last spring", "ASAP", "?", "2019-13-45"])
        return ""

    def notes(self) -> str:
        r = self.rng
        if r.random() < 0.02:
            return "Spoke to partner,\nwill decide next month"
        return r.choice(NOTES)

    def row(self) -> list[str]:
        first, last = self.name(FIRST), self.name(LAST)
        return [
            first,
            last,
            self.phone(),
            self.email(first, last),
            self.postcode(),
            self.date(),
            self.notes(),
            self.rng.choice(SOURCES),
        ]


def generate(path: Path, rows: int, seed: int = 42) -> Path:
    """Writes `rows` data rows (plus ~1% blank or all-empty lines) to `path`, UTF-8 with BOM."""
    gen = Generator(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with tmp.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(HEADER)
        written = 0
        while written < rows:
            x = gen.rng.random()
            if x < 0.005:
                f.write("\r\n")
                continue
            if x < 0.01:
                w.writerow([""] * len(HEADER))
                continue
            w.writerow(gen.row())
            written += 1
    tmp.replace(path)
    return path
