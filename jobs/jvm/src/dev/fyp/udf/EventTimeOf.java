package dev.fyp.udf;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * The event time of a raw record for the source's watermark: its time field if the whole record
 * is valid under the schema descriptor, else 0 (ignored by the watermark).
 *
 * <p>Why the full validation and not only the time field: a malformed record (a missing user, a
 * made-up region) can still carry a plausible time minutes ahead of the stream; had it moved the
 * watermark, the valid records around it would have been judged late. The record is validated once:
 * {@link RecordSchema#validateCached} keeps the result for the parse that follows in the same thread.
 */
public class EventTimeOf extends ScalarFunction {
    private transient String cachedDescriptor;
    private transient RecordSchema cachedSchema;
    private transient int fieldIndex = -1;
    private transient String cachedField;

    public @DataTypeHint("BIGINT NOT NULL") long eval(byte[] payload, String field, String descriptor) {
        if (cachedSchema == null || !descriptor.equals(cachedDescriptor) || !field.equals(cachedField)) {
            cachedSchema = RecordSchema.parse(descriptor);
            cachedDescriptor = descriptor;
            cachedField = field;
            Integer i = cachedSchema.index.get(field);
            if (i == null) throw new IllegalArgumentException("no field " + field + " in the schema descriptor");
            fieldIndex = i;
        }
        RecordSchema.Validated v = cachedSchema.validateCached(payload);
        if (v.error != null) return 0L;
        Object ts = v.values[fieldIndex];
        return ts instanceof Long ? (Long) ts : 0L;
    }

    @Override
    public boolean isDeterministic() {
        return false; // depends on the wall clock through the future-skew bound
    }
}
