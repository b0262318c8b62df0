"""The JVM's FYP_ROUND_HALF_UP (jobs/jvm RoundHalfUp) against what it replaces, Flink's
CAST(ROUND(x, 0) AS BIGINT): the double's shortest decimal form rounded half up (away from zero)."""
from __future__ import annotations

import math
import random
from decimal import ROUND_HALF_UP, Decimal

import pytest

from operators.exact_sums import SCALE
from tests.unit.jvm_ops import udfs


def round_like_flink(x: float) -> int:
    return int(Decimal(repr(x)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_equals_rounding_the_decimal_form_half_up():
    rng = random.Random(7)
    fn = udfs().RoundHalfUp()
    xs = [0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 0.49999999999999994, -0.49999999999999994,
          2.0**52 + 0.5, 2.0**52 - 0.5, 2.0**53 + 2, -(2.0**53) - 2, 1e17, 4503599627370495.5]
    xs += [rng.randint(-10**6, 10**6) + rng.choice([0.5, 0.25, 0.75, 0.4999999999, 0.5000000001]) for _ in range(2000)]
    # the job's values: a view's fraction or score in units of 1/SCALE
    xs += [rng.random() * SCALE for _ in range(2000)] + [rng.uniform(-5, 20) * SCALE for _ in range(2000)]
    xs += [math.log1p(rng.randint(0, 600_000) / 1000.0) * SCALE for _ in range(2000)]
    wrong = [(x, fn.eval(x), round_like_flink(x)) for x in xs if fn.eval(x) != round_like_flink(x)]
    assert not wrong, wrong[:5]


def test_null_stays_null_and_a_non_finite_value_is_refused():
    fn = udfs().RoundHalfUp()
    assert fn.eval(None) is None
    for x in (math.nan, math.inf, -math.inf):
        with pytest.raises(Exception, match="cannot round"):
            fn.eval(x)
