"""Fractional contributions (completion ratios, weighted scores) summed exactly.

Each view's value is rounded in the JVM to a whole number of units of 1/SCALE and summed as an
integer. Floating-point addition depends on the order of its terms, and the order in which a
window's views reach an aggregate depends on partitions and batching; an integer sum does not, so
a replay, a backfill and a live run store bit-identical values, and a sliding window that adds
and removes tiles never drifts. One unit is 1e-11: a sum of n views is within n * 5e-12 of the
sum of the unrounded values, and a per-minute tile overflows only past about 18 million views of
one video at a score of 5. Rates and scores are read back from units by the JVM's
ExactDivision (jobs/jvm): the double nearest to the exact quotient.
"""
from __future__ import annotations

SCALE = 10**11
# The JVM function (jobs/jvm dev.fyp.udf.RoundHalfUp, registered by every job) that rounds like
# CAST(ROUND(x, 0) AS BIGINT), without the BigDecimal Flink's ROUND builds per call.
ROUND_FN = "FYP_ROUND_HALF_UP"


def fixed_point_sql(expr: str) -> str:
    """Flink SQL: the DOUBLE expression as a BIGINT number of units (nearest, ties away from zero)."""
    return f"{ROUND_FN}(({expr}) * {SCALE}.0)"
