"""Feedback: bytes on stdout of `clude test` against `pytest -v` on a suite with 50 realistic failures.

Targets: clude's report <= 2 KB and >= 20x smaller than pytest -v, and every failure line it shows names
file:line, the test and a reason (`FAILED <file>:<line> <id> — <reason>`; ERROR for an error).
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
from pathlib import Path

from common import CLUDE, PYTHON, Figure, report, run

FAILURES = 50
LINE = re.compile(r"^(?:FAILED|ERROR) (?P<file>\S+?):(?P<line>\d+) (?P<id>.+?) — (?P<reason>\S.*)$")

LIBRARY = {
    "shop/__init__.py": "",
    "shop/pricing.py": '''\
COUPONS = {"SAVE10": 0.10, "SAVE20": 0.20, "HALF": 0.50}


def total(items, discount=0.0):
    subtotal = sum(price * qty for price, qty in items)
    return round(subtotal * (1 - discount), 2)


def coupon_rate(code):
    return COUPONS[code.upper()]


def parse_price(text):
    amount, currency = text.split()
    return float(amount), currency
''',
    "shop/text.py": '''\
import re


def slugify(title):
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
''',
    "shop/inventory.py": '''\
class Inventory:
    def __init__(self, stock):
        self.stock = dict(stock)

    def remove(self, name, qty):
        have = self.stock.get(name, 0)
        if qty > have:
            raise ValueError(f"only {have} of {name!r} in stock, cannot remove {qty}")
        self.stock[name] = have - qty
        return self.stock[name]

    def summary(self):
        return {"kinds": len(self.stock), "units": sum(self.stock.values()),
                "empty": sorted(k for k, v in self.stock.items() if v == 0)}
''',
}

WORDS = "apple pear fig plum kiwi lime date grape melon berry".split()


def _cases(rng: random.Random, n: int, wrong: int, make):
    """n parametrize cases from make(i, broken); `wrong` of them (spread out) have a wrong expectation."""
    bad = set(rng.sample(range(n), wrong))
    return ",\n    ".join(repr(make(i, i in bad)) for i in range(n))


def tests(rng: random.Random) -> dict[str, str]:
    def totals(i, broken):
        items = [(rng.randint(1, 40) + 0.5, rng.randint(1, 5)) for _ in range(rng.randint(1, 4))]
        disc = rng.choice([0.0, 0.1, 0.25])
        want = round(sum(p * q for p, q in items) * (1 - disc), 2)
        return items, disc, round(want + (1.5 if broken else 0), 2)

    def slugs(i, broken):
        title = " ".join(rng.sample(WORDS, 3)).title() + rng.choice(["!", "", " & Co", "?"])
        want = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
        return title, want.replace("-", "_") if broken else want

    def removals(i, broken):
        have = rng.randint(2, 9)
        return have, have + rng.randint(1, 3) if broken else rng.randint(1, have)

    def summaries(i, broken):
        stock = {w: rng.randint(0, 3) for w in rng.sample(WORDS, 4)}
        want = {"kinds": 4, "units": sum(stock.values()),
                "empty": sorted(k for k, v in stock.items() if v == 0)}
        if broken:
            want["units"] += 1
        return stock, want

    codes = ["SAVE10", "save20", "HALF", "Save10"]
    return {
        "tests/test_pricing.py": f'''\
import pytest

from shop.pricing import total

CASES = [
    {_cases(rng, 60, 12, totals)}
]


@pytest.mark.parametrize("items,discount,expected", CASES)
def test_total(items, discount, expected):
    assert total(items, discount) == expected
''',
        "tests/test_coupons.py": f'''\
import pytest

from shop.pricing import COUPONS, coupon_rate

CODES = {codes * 4 + ["SPRING", "WINTER5", "FREESHIP", "SAVE15", "VIP", "SAVE 10"]!r}


@pytest.mark.parametrize("code", CODES)
def test_coupon_is_known(code):
    rate = coupon_rate(code)
    assert 0 < rate < 1
    assert rate in COUPONS.values()
''',
        "tests/test_text.py": f'''\
import pytest

from shop.text import slugify

CASES = [
    {_cases(rng, 50, 10, slugs)}
]


@pytest.mark.parametrize("title,slug", CASES)
def test_slugify(title, slug):
    assert slugify(title) == slug
''',
        "tests/test_inventory.py": f'''\
import pytest

from shop.inventory import Inventory

CASES = [
    {_cases(rng, 40, 8, removals)}
]


@pytest.mark.parametrize("have,take", CASES)
def test_remove_leaves_the_rest(have, take):
    inv = Inventory({{"apple": have}})
    left = inv.remove("apple", take)
    assert left == have - take
''',
        "tests/test_summary.py": f'''\
import pytest

from shop.inventory import Inventory

CASES = [
    {_cases(rng, 40, 8, summaries)}
]


@pytest.mark.parametrize("stock,expected", CASES)
def test_summary(stock, expected):
    assert Inventory(stock).summary() == expected
''',
        "tests/test_parse.py": f'''\
import pytest

from shop.pricing import parse_price

PRICES = {["12.50 EUR", "3 USD", "0.99 GBP", "100 JPY"] * 6 + ["12.50EUR", "USD", "1 000 SEK", "", "7.5", "4 U S D"]!r}


@pytest.mark.parametrize("text", PRICES)
def test_parse_price(text):
    amount, currency = parse_price(text)
    assert amount >= 0 and len(currency) == 3
''',
    }


def write(root: Path) -> None:
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    for rel, text in {**LIBRARY, **tests(random.Random(7))}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def check_lines(out: str, root: Path) -> tuple[int, list[str]]:
    """(failure lines shown, problems): every FAILED / ERROR line must name an existing file:line and a
    reason."""
    problems, shown = [], 0
    for text in out.splitlines()[1:]:  # after the header, which starts with the status (FAILED · pytest ...)
        if not text.startswith(("FAILED ", "ERROR ")):
            continue
        shown += 1
        m = LINE.match(text)
        if not m:
            problems.append(f"not `FAILED file:line id — reason`: {text}")
            continue
        path = root / m["file"]
        if not path.is_file() or not 1 <= int(m["line"]) <= len(path.read_text().splitlines()):
            problems.append(f"no such file:line: {text}")
    more = re.search(r"\.\.\. and (\d+) more failures", out)
    if shown + (int(more[1]) if more else 0) != FAILURES or f"{FAILURES} failed" not in out:
        problems.append(f"expected {FAILURES} failures accounted for, got {shown} shown + "
                        f"{more[1] if more else 0} more")
    return shown, problems


def main() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="clude-bench-feedback-") as tmp:
        root = Path(tmp)
        write(root)
        _, pytest_v = run([PYTHON, "-m", "pytest", "-v"], root)
        _, clude = run([CLUDE, "test"], root)
        out = clude.stdout.decode("utf-8")
        shown, problems = check_lines(out, root)
    for p in problems:
        print(f"  problem: {p}")
    small, big = len(clude.stdout), len(pytest_v.stdout)
    return [
        Figure("feedback", f"stdout of clude test, {FAILURES} failures", f"{small:,} bytes",
               "<= 2,048 bytes", small <= 2048),
        Figure("feedback", "pytest -v stdout / clude test stdout",
               f"{big:,} / {small:,} bytes = {big / small:.1f}x smaller", ">= 20x", big >= 20 * small),
        Figure("feedback", "failure lines with file:line, id and reason",
               f"{shown - len(problems)} of {shown} shown", "all", shown > 0 and not problems),
    ]


if __name__ == "__main__":
    sys.exit(report("feedback", main()))
