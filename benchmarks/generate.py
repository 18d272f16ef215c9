"""Seeded, believable customer-like rows for the benchmarks.

Everything comes from ``random.Random(seed)``: the same seed and row count give
the same rows, byte for byte, on every machine. Values are the Python values an
importer hands to ``RecordsService.bulk_create`` (str, Decimal, date, int ids),
keyed by field key.

    python -m benchmarks.generate --rows 5 --seed 1      # print a few rows
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

STAGES = ("lead", "potential", "customer")
STAGE_WEIGHTS = (55, 25, 20)  # a funnel: most contacts are leads

REGIONS = (
    "North",
    "North East",
    "East",
    "South East",
    "South",
    "South West",
    "West",
    "North West",
    "Midlands",
    "Capital",
    "Highlands",
    "Islands",
    "Coast",
    "Valley",
    "Lakes",
    "Borders",
)

CUSTOMER_FIELDS: list[dict[str, Any]] = [
    {"key": "name", "type": "text", "required": True},
    {"key": "email", "type": "email", "unique": True},
    {"key": "phone", "type": "phone"},
    {"key": "stage", "type": "select", "options": list(STAGES)},
    {"key": "amount", "type": "currency"},
    {"key": "signed_up", "type": "date"},
    {"key": "region", "type": "link", "to": "regions"},
    {"key": "score", "type": "integer"},
]

_FIRST = (
    "Anna Ben Carla David Emma Felix Greta Hugo Ines Jonas Klara Lukas Maria Noah Olga "
    "Paul Quinn Rosa Simon Tara Umar Vera Walter Xenia Yusuf Zoe Alice Bruno Chloe Dario "
    "Elena Finn Gina Henrik Ida Jakob Karin Leon Mila Nils Oscar Petra Rafael Sara Tobias "
    "Ulla Viktor Wanda Yara Zeno"
).split()
_LAST = (
    "Adler Becker Costa Dvorak Eriksen Fischer Garcia Hansen Ibsen Jansen Keller Lehmann "
    "Meyer Novak Olsen Petrov Quist Rossi Schmidt Tanaka Ueda Vogel Weber Xu Young Zimmer "
    "Andersen Brandt Curie Dubois Engel Fuchs Gruber Horvat Iversen Jung Kowalski Lang "
    "Moreau Nagy Otto Pohl Richter Sommer Toth Urban Varga Wolf Yilmaz Ziegler"
).split()
_COMPANY = (
    "Logistics Bakery Consulting Foods Systems Studio Garage Pharma Textiles Media "
    "Engineering Trading Farms Analytics Dental Architects Robotics Printing Travel Energy"
).split()
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example", "corp.example")


def region_names() -> list[str]:
    return list(REGIONS)


def customer_rows(n: int, *, seed: int = 42, region_ids: Sequence[int]) -> Iterator[dict[str, Any]]:
    """``n`` customer rows, the same for the same seed."""
    rng = random.Random(seed)
    for i in range(n):
        yield _row(rng, i, region_ids)


def chunks(
    total: int, size: int, *, seed: int = 42, region_ids: Sequence[int]
) -> Iterator[list[dict[str, Any]]]:
    """The rows of ``customer_rows(total, ...)`` in lists of ``size``."""
    rows = customer_rows(total, seed=seed, region_ids=region_ids)
    for start in range(0, total, size):
        yield [next(rows) for _ in range(min(size, total - start))]


def _row(rng: random.Random, i: int, region_ids: Sequence[int]) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    company = rng.random() < 0.3
    name = f"{last} {rng.choice(_COMPANY)}" if company else f"{first} {last}"
    # unique by construction: the row number, written in base 36 so that email order is
    # unrelated to insertion (id) order
    email = f"{first}.{last}.{_b36(i * 7919 + 13)}@{rng.choice(_DOMAINS)}".lower()
    if rng.random() < 0.15:
        email = email.upper() if rng.random() < 0.5 else email.capitalize()  # input is messy
    phone = (
        None
        if rng.random() < 0.1
        else f"+{rng.choice((1, 31, 33, 41, 44, 49))} {rng.randint(20, 999)} "
        f"{rng.randint(100, 999)} {rng.randint(1000, 9999)}"
    )
    stage = rng.choices(STAGES, STAGE_WEIGHTS)[0]
    # a long tail: most amounts are small, a few are large; some are blank
    amount = (
        None if rng.random() < 0.05 else Decimal(int(rng.lognormvariate(7.0, 1.2) * 100)).scaleb(-2)
    )
    signed_up = date(2019, 1, 1) + timedelta(days=rng.randint(0, 6 * 365))
    return {
        "name": name,
        "email": email,
        "phone": phone,
        "stage": stage,
        "amount": amount,
        "signed_up": signed_up,
        "region": rng.choice(region_ids),
        "score": rng.randint(0, 100),
    }


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=5)
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)
    for row in customer_rows(args.rows, seed=args.seed, region_ids=list(range(1, 17))):
        print(row)


if __name__ == "__main__":
    main()
