package dev.fyp.udf;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;

/**
 * The newest event time among the valid records of a JSON-lines file, validated exactly as the
 * job's source validates them (the same {@link RecordSchema}): a backfill's end-of-input as-of time.
 * Called once per backfill from the driver, so that finding it reads the file at the JVM's speed
 * rather than validating every line in Python.
 */
public final class NewestEventTime {
    private NewestEventTime() {}

    /** Long.MIN_VALUE when no record is valid. */
    public static long of(String path, String field, String descriptor) throws IOException {
        RecordSchema schema = RecordSchema.parse(descriptor);
        Integer at = schema.index.get(field);
        if (at == null) throw new IllegalArgumentException("no field " + field + " in the schema descriptor");
        long newest = Long.MIN_VALUE;
        Object[] values = new Object[schema.fields.size()];
        ByteArrayOutputStream line = new ByteArrayOutputStream(512);
        try (InputStream in = new BufferedInputStream(new FileInputStream(path), 1 << 20)) {
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) > 0) {
                int start = 0;
                for (int i = 0; i < n; i++) {
                    if (buf[i] != '\n') continue;
                    line.write(buf, start, i - start);
                    newest = Math.max(newest, timeOf(schema, line.toByteArray(), values, at));
                    line.reset();
                    start = i + 1;
                }
                line.write(buf, start, n - start);
            }
        }
        if (line.size() > 0) newest = Math.max(newest, timeOf(schema, line.toByteArray(), values, at));
        return newest;
    }

    private static long timeOf(RecordSchema schema, byte[] record, Object[] values, int at) {
        if (schema.validateInto(record, values) != null) return Long.MIN_VALUE;
        return values[at] instanceof Long ? (Long) values[at] : Long.MIN_VALUE;
    }
}
