package dev.fyp.ops;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;

/**
 * numerator / (denominator * scale) as the double nearest to the exact quotient, as Python's
 * integer true division gives it. Sums of fractional values are integers of fixed-point units
 * (operators/exact_sums.py); past 2^53 a plain double division would round its operands first.
 */
public final class ExactDivision {
    private static final long EXACT_IN_DOUBLE = 1L << 53;
    private static final MathContext PRECISION = new MathContext(40, RoundingMode.HALF_EVEN);

    private ExactDivision() {}

    public static double of(long numerator, long denominator, long scale) {
        if (denominator == 0) return 0.0;
        if (Math.abs(numerator) < EXACT_IN_DOUBLE
                && Math.abs(denominator) < EXACT_IN_DOUBLE / Math.max(1, Math.abs(scale))) {
            return (double) numerator / ((double) denominator * (double) scale);  // both operands exact
        }
        BigDecimal d = BigDecimal.valueOf(denominator).multiply(BigDecimal.valueOf(scale));
        return BigDecimal.valueOf(numerator).divide(d, PRECISION).doubleValue();
    }
}
