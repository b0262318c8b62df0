package dev.fyp.udf;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.stream.LongStream;

/**
 * The newest event time among the valid records of a JSON-lines file, validated exactly as the
 * job's source validates them (the same {@link RecordSchema}): a backfill's end-of-input as-of time.
 * Called once per backfill from the driver, so that finding it reads the file at the JVM's speed
 * rather than validating every line in Python.
 *
 * <p>The file is read in parts, one per core, side by side (each part holds the lines that start
 * in its byte range): the pass runs before the job, when the cores are free. On the bench's 2M-line
 * files, in a fresh JVM as a backfill calls it, on 2 cores: 2.1-2.5 s on one thread, 1.3-1.5 s in
 * two parts (docs/benchmarks.md).
 */
public final class NewestEventTime {
    private static final long MIN_PART_BYTES = 4L << 20;  // smaller files: one part, no threads

    private NewestEventTime() {}

    /** Long.MIN_VALUE when no record is valid. */
    public static long of(String path, String field, String descriptor) throws IOException {
        long size = Files.size(Paths.get(path));
        int parts = (int) Math.max(1, Math.min(Runtime.getRuntime().availableProcessors(), size / MIN_PART_BYTES));
        return of(path, field, descriptor, parts);
    }

    /** The same, reading the file in `parts` parts. */
    public static long of(String path, String field, String descriptor, int parts) throws IOException {
        RecordSchema schema = RecordSchema.parse(descriptor);
        Integer at = schema.index.get(field);
        if (at == null) throw new IllegalArgumentException("no field " + field + " in the schema descriptor");
        Path file = Paths.get(path);
        long size = Files.size(file);
        if (parts <= 1) return newestIn(schema, at, file, 0, Long.MAX_VALUE);
        try {
            return LongStream.range(0, parts).parallel().map(k -> {
                try {
                    return newestIn(schema, at, file, k * size / parts, k == parts - 1 ? Long.MAX_VALUE : (k + 1) * size / parts);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            }).max().getAsLong();
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    /** The newest valid event time among the lines that start at a byte in [from, to). */
    private static long newestIn(RecordSchema schema, int at, Path file, long from, long to) throws IOException {
        long newest = Long.MIN_VALUE;
        Object[] values = new Object[schema.fields.size()];
        ByteArrayOutputStream line = new ByteArrayOutputStream(512);
        // from inside the file: start on the byte before `from` and skip to the end of its line, so
        // that the first line read is the first to start at `from` or after
        long pos = from == 0 ? 0 : from - 1;
        boolean skipping = from > 0;
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            channel.position(pos);
            InputStream in = new BufferedInputStream(Channels.newInputStream(channel), 1 << 20);
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) > 0) {
                int start = 0;
                for (int i = 0; i < n; i++) {
                    if (buf[i] != '\n') continue;
                    if (skipping) {
                        skipping = false;
                    } else {
                        line.write(buf, start, i - start);
                        newest = Math.max(newest, timeOf(schema, line.toByteArray(), values, at));
                        line.reset();
                    }
                    start = i + 1;
                    if (pos + start >= to) return newest;  // the next line is the next part's
                }
                if (!skipping) line.write(buf, start, n - start);
                pos += n;
            }
        }
        if (!skipping && line.size() > 0) newest = Math.max(newest, timeOf(schema, line.toByteArray(), values, at));
        return newest;
    }

    private static long timeOf(RecordSchema schema, byte[] record, Object[] values, int at) {
        if (schema.validateInto(record, values) != null) return Long.MIN_VALUE;
        return values[at] instanceof Long ? (Long) values[at] : Long.MIN_VALUE;
    }
}
