package dev.fyp.udf;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * numerator / (denominator * scale) as the double nearest to the exact quotient (0.0 when the
 * denominator is 0). Window sums of fractional values are integers of fixed-point units
 * (operators/exact_sums.py); past 2^53 units a plain DOUBLE division would round its operands first.
 */
public class ExactRatio extends ScalarFunction {
    private static final long EXACT_IN_DOUBLE = 1L << 53;
    private static final MathContext PRECISION = new MathContext(40, RoundingMode.HALF_EVEN);

    public @DataTypeHint("DOUBLE NOT NULL") double eval(Long numeratorOrNull, Long denominatorOrNull, Long scaleOrNull) {
        long numerator = numeratorOrNull == null ? 0L : numeratorOrNull;
        long denominator = denominatorOrNull == null ? 0L : denominatorOrNull;
        long scale = scaleOrNull == null ? 1L : scaleOrNull;
        if (denominator == 0) return 0.0;
        if (Math.abs(numerator) < EXACT_IN_DOUBLE && Math.abs(denominator) < EXACT_IN_DOUBLE / Math.max(1, Math.abs(scale))) {
            return (double) numerator / ((double) denominator * (double) scale);  // both operands exact
        }
        BigDecimal d = BigDecimal.valueOf(denominator).multiply(BigDecimal.valueOf(scale));
        return BigDecimal.valueOf(numerator).divide(d, PRECISION).doubleValue();
    }
}
