package dev.fyp.udf;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * A DOUBLE rounded to the nearest BIGINT, ties away from zero: what {@code CAST(ROUND(x, 0) AS
 * BIGINT)} gives, without the BigDecimal that Flink's ROUND builds from the double's decimal string
 * for every call (measured: a fifth of the engagement job's per-event arithmetic).
 *
 * <p>Why the results are the same: ROUND rounds the shortest decimal string of x half up. Below
 * 2^52 every k + 0.5 is itself a double, so that string lies on the same side of k + 0.5 as x does,
 * and rounding x exactly gives the same integer; from 2^52 on, x is already whole.
 */
public class RoundHalfUp extends ScalarFunction {
    public @DataTypeHint("BIGINT") Long eval(Double x) {
        if (x == null) return null;
        double d = x;
        if (Double.isNaN(d) || Double.isInfinite(d)) {
            throw new ArithmeticException("cannot round " + d + " to a whole number");
        }
        return d >= 0 ? Math.round(d) : -Math.round(-d);
    }
}
