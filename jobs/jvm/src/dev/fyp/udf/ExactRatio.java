package dev.fyp.udf;

import dev.fyp.ops.ExactDivision;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/** SQL: numerator / (denominator * scale), correctly rounded; 0.0 when the denominator is 0 (a
 * window with no views has rates of 0). See {@link ExactDivision}. */
public class ExactRatio extends ScalarFunction {
    public @DataTypeHint("DOUBLE NOT NULL") double eval(Long numerator, Long denominator, Long scale) {
        return ExactDivision.of(numerator == null ? 0L : numerator, denominator == null ? 0L : denominator,
                scale == null ? 1L : scale);
    }
}
