package dev.fyp.udf;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * The event time of a raw record for the source's watermark, or 0 when it is absent or outside
 * [minMs, now + maxFutureSkewMs]. A streaming scan that stops at the field: cheaper than the full
 * parse, and a malformed or far-future record can never drag the watermark forward.
 */
public class EventTimeOf extends ScalarFunction {
    private static final JsonFactory FACTORY = new JsonFactory();

    public @DataTypeHint("BIGINT NOT NULL") long eval(byte[] payload, String field, long minMs, long maxFutureSkewMs) {
        if (payload == null) return 0L;
        try (JsonParser p = FACTORY.createParser(payload)) {
            if (p.nextToken() != JsonToken.START_OBJECT) return 0L;
            JsonToken t;
            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken v = p.nextToken();
                if (field.equals(name)) {
                    if (v != JsonToken.VALUE_NUMBER_INT) return 0L;
                    long ts = p.getLongValue();
                    boolean sane = ts >= minMs && ts <= System.currentTimeMillis() + maxFutureSkewMs;
                    return sane ? ts : 0L;
                }
                p.skipChildren();
            }
            return 0L;
        } catch (Exception e) {
            return 0L;
        }
    }

    @Override
    public boolean isDeterministic() {
        return false; // depends on the wall clock through the future-skew bound
    }
}
