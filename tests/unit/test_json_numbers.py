"""The JVM operators' JSON numbers (jobs/jvm Json.number) against Python's own shortest
round-trip form: every double comes back the same, in as few significant digits as repr uses (or
two: Java's form picks, among two-digit decimals, the nearest: 4.9E-324 where repr has 5e-324)."""
from __future__ import annotations

import math
import random

import pytest

from tests.unit.jvm_ops import ops


def _digits(text: str) -> str:
    mantissa = text.lower().split("e")[0].replace("-", "").replace(".", "")
    return mantissa.strip("0")


def _values() -> list[float]:
    rng = random.Random(11)
    out = [0.0, 1.0, 0.1, 0.5, 1 / 3, 2 / 3, 1e-300, 5e-324, 1.7976931348623157e308, 2e23, 9007199254740993.0,
           123456789.125, 1e22, 1e-5, 0.001, 1e7, 1e-3]
    out += [rng.randrange(0, 10**6) / (rng.randrange(1, 10**6) * 1000) for _ in range(3000)]  # ratios as emitted
    out += [math.ldexp(rng.random(), rng.randrange(-1000, 1000)) for _ in range(2000)]
    return out + [-v for v in out[:50]]


def test_numbers_parse_back_to_the_same_double_in_the_fewest_digits():
    number = ops().Json.number
    for v in _values():
        text = number(v)
        assert float(text) == v, (v, text)
        assert len(_digits(text)) <= max(2, len(_digits(repr(v)))), (v, text, repr(v))


def test_a_value_json_cannot_hold_is_refused():
    from py4j.protocol import Py4JJavaError

    with pytest.raises(Py4JJavaError, match="not a JSON number"):
        ops().Json.number(float("nan"))
