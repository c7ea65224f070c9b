"""Generate ``syncd/data/sample_crm.csv``, the demo's CRM export, deterministically.

    uv run python -m tests.sync.make_sample_crm [PATH]

The file is messy on purpose, the way real exports are: phones written five ways, emails in
mixed case with stray spaces, accented names in both NFC and NFD, and a handful of rows that
cannot be sent (listed in ``INVALID``). Every other phone number is a *possible* number for
its country per ``phonenumbers`` (fictional ranges: 555-01xx in the US, 020 7946 0xxx in
London), so the demo rejects exactly the rows it means to.
"""

from __future__ import annotations

import csv
import io
import random
import sys
import unicodedata
from pathlib import Path

from syncd.sync.import_formats import CSV_COLUMNS

SEED = 20261128
COUNT = 300
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "syncd" / "data" / "sample_crm.csv"

FIRST = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Susan",
    "José",
    "María",
    "Zoë",
    "Chloé",
    "Renée",
    "François",
    "Søren",
    "Björn",
    "Łukasz",
    "Małgorzata",
    "Zoltán",
    "Ana",
    "Siobhán",
    "Hélène",
    "Jürgen",
    "Noël",
    "Ümit",
    "Ayşe",
    "Nguyễn",
    "Priya",
    "Wei",
    "Olumide",
    "Mateo",
    "Inés",
]
LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Müller",
    "Schröder",
    "Núñez",
    "Peña",
    "Ødegaard",
    "Dvořák",
    "Kowalczyk",
    "Lefèvre",
    "Gonçalves",
    "O'Brien",
    "van der Berg",
    "Çelik",
    "Nakamura",
    "Okafor",
    "Patel",
    "Ó Súilleabháin",
    "Åberg",
    "Ibáñez",
]
COMPANIES = [
    ("ORG-001", "Acme Corporation"),
    ("ORG-002", "Globex Ltd"),
    ("ORG-003", "Initech"),
    ("ORG-004", "Umbrella Health"),
    ("ORG-005", "Société Générale de Test"),
    ("ORG-006", "Müller & Söhne GmbH"),
    ("ORG-007", "Stark Industries"),
]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.co.uk", "example.de"]
US_AREAS = ["202", "212", "312", "415", "617", "305", "512"]

# externalId -> why the row is invalid (the demo shows these rejections)
INVALID = {
    "CRM-00017": "email: not a valid address",
    "CRM-00058": "phone: not a possible number",
    "CRM-00101": "lastName: missing",
    "CRM-00163": "email: not a valid address",
    "CRM-00222": "phone: not a possible number",
    "CRM-00287": "lastName: missing",
}


def _us(rng: random.Random) -> str:
    area = rng.choice(US_AREAS)
    line = f"01{rng.randrange(100):02d}"
    style = rng.randrange(5)
    return [
        f"({area}) 555-{line}",
        f"{area}.555.{line}",
        f"{area}-555-{line}",
        f"+1 {area} 555 {line}",
        f"{area}555{line}",
    ][style]


def _uk(rng: random.Random) -> str:
    return f"+44 20 7946 0{rng.randrange(1000):03d}"


def _de(rng: random.Random) -> str:
    return f"+49 30 {rng.randrange(10_000_000, 99_999_999)}"


def _fr(rng: random.Random) -> str:
    digits = [f"{rng.randrange(100):02d}" for _ in range(4)]
    return "+33 1 " + " ".join(digits)


def _phone(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.7:
        return _us(rng)
    if roll < 0.85:
        return _uk(rng)
    return _de(rng) if roll < 0.95 else _fr(rng)


_NO_DECOMPOSITION = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss"})


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_NO_DECOMPOSITION))
    kept = "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c in " -"))
    return kept.lower().replace(" ", "").replace("-", "")


def _email(rng: random.Random, first: str, last: str) -> str:
    local = f"{_ascii(first)}.{_ascii(last)}"
    address = f"{local}@{rng.choice(DOMAINS)}"
    style = rng.randrange(6)
    if style == 0:
        return ""
    if style == 1:
        return address.title()  # Maria.Garcia@Example.Com
    if style == 2:
        return f"  {address.upper()} "
    if style == 3:
        return f" {local.capitalize()}@{rng.choice(DOMAINS).upper()}"
    return address


def _name(rng: random.Random, names: list[str]) -> str:
    name = rng.choice(names)
    if rng.random() < 0.3:
        name = unicodedata.normalize("NFD", name)  # as some CRMs on macOS export it
    if rng.random() < 0.1:
        name = f" {name}  "
    return name


def rows(seed: int = SEED, count: int = COUNT) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for n in range(1, count + 1):
        external_id = f"CRM-{n:05d}"
        first, last = _name(rng, FIRST), _name(rng, LAST)
        row = dict.fromkeys(CSV_COLUMNS, "")
        row.update(
            externalId=external_id,
            firstName=first,
            lastName=last,
            email=_email(rng, first, last),
            workPhone=_phone(rng),
        )
        if rng.random() < 0.4:
            row["mobilePhone"] = _phone(rng)
        if rng.random() < 0.1:
            row["homePhone"] = _phone(rng)
        if rng.random() < 0.6:
            row["organizationId"], row["organizationName"] = rng.choice(COMPANIES)
        why = INVALID.get(external_id, "")
        if why.startswith("email"):
            row["email"] = rng.choice(["maria.lopez@@example.com", "no-at-sign.example.com"])
        elif why.startswith("phone"):
            row["workPhone"] = rng.choice(["+1 202 555 01", "+44 20 79"])
        elif why.startswith("lastName"):
            row["lastName"] = ""
        out.append(row)
    return out


def render(seed: int = SEED, count: int = COUNT) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(seed, count))
    return buffer.getvalue()


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else DEFAULT_PATH
    path.write_text(render(), encoding="utf-8", newline="")
    print(f"wrote {COUNT} contacts to {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
