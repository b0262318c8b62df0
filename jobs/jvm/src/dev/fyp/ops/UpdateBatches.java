package dev.fyp.ops;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

import org.apache.flink.api.common.operators.ProcessingTimeService.ProcessingTimeCallback;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;

/**
 * Feature updates (entity id, update as a JSON object) packed into batches (batch key, JSON array
 * of the updates in the order they came): one Kafka record, and one message for the writer to
 * take, for many updates. WHY: per record, the Kafka producer, the broker and above all the
 * writer's client (a Python object per message) cost more than the update itself, and an input
 * whose windows fill sends several updates per event.
 *
 * <p>The batch is UTF-8 bytes, built as such, because the sink writes bytes: a string column is
 * encoded again char by char on its way out (Flink's StringUtf8Utils; a tenth of the sliding
 * operator's thread in a sparse engagement backfill, by JFR, though no faster run came of it).
 *
 * <p>A batch leaves when it reaches `maxBytes` bytes, when the watermark moves (the timers that emit
 * updates fire on it, so the updates of one watermark leave together, right after), at most
 * `maxDelayMs` after its first update (updates not emitted by a watermark wait no longer), before
 * a checkpoint barrier (nothing buffered is left out of a checkpoint: at least once, as the sink)
 * and at the end of the input. The batch key is the subtask's: an entity's updates all come
 * through one subtask (the operators upstream are keyed by entity), so they stay in one partition
 * in the order they were made. Subtask i's key lands on partition i mod `partitions` (the topic's
 * partitions; {@link PartitionKeys}), so the subtasks share the partitions, and the writers that
 * read them the load. No state: what a checkpoint would hold has been sent.
 */
public final class UpdateBatches extends AbstractStreamOperator<Row>
        implements OneInputStreamOperator<Row, Row>, BoundedOneInput, ProcessingTimeCallback {

    private final int maxBytes;
    private final long maxDelayMs;
    private final int partitions;
    private transient byte[] batch;
    private transient int length, count;
    private transient boolean timerSet;
    private transient String key;
    private transient Counter updates;

    public UpdateBatches(int maxBytes, long maxDelayMs, int partitions) {
        if (partitions < 1) throw new IllegalArgumentException("partitions must be at least 1: " + partitions);
        this.maxBytes = maxBytes;
        this.maxDelayMs = maxDelayMs;
        this.partitions = partitions;
    }

    /** Rows of the batches: (entity_id, the batch's key; payload, the JSON array's UTF-8 bytes). */
    public static final TypeInformation<Row> BATCH_TYPE = Types.ROW_NAMED(
            new String[] {"entity_id", "payload"}, Types.STRING, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);

    /** `updates` (rows of entity id, update JSON) as batches of BATCH_TYPE; a batch reaches
     * `maxBytes` with its last update (bytes). */
    public static SingleOutputStreamOperator<Row> of(DataStream<Row> updates, int maxBytes, long maxDelayMs,
                                                     int partitions, String uid) {
        // chained to the operator that made the updates (Flink 2's default chaining strategy: ALWAYS)
        return updates.transform("feature-update-batches", BATCH_TYPE, new UpdateBatches(maxBytes, maxDelayMs, partitions))
                .uid(uid);
    }

    @Override
    public void open() throws Exception {
        super.open();
        batch = new byte[maxBytes + 4096];
        int subtask = getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
        key = PartitionKeys.keyFor("batch-" + subtask, subtask % partitions, partitions);
        updates = getRuntimeContext().getMetricGroup().counter("feature_updates");
    }

    @Override
    public void processElement(StreamRecord<Row> element) throws Exception {
        // String.getBytes: the JDK's vectorized encoding (a Latin-1 string's ASCII is copied as is)
        byte[] update = ((String) element.getValue().getField(1)).getBytes(StandardCharsets.UTF_8);
        if (length + update.length + 2 > batch.length) {
            batch = Arrays.copyOf(batch, Math.max(2 * batch.length, length + update.length + 2));
        }
        batch[length++] = (byte) (count == 0 ? '[' : ',');
        System.arraycopy(update, 0, batch, length, update.length);
        length += update.length;
        count++;
        updates.inc();
        if (length >= maxBytes) {
            flush();
        } else if (!timerSet) {
            timerSet = true;
            ProcessingTimeCallback self = this;
            getProcessingTimeService().registerTimer(getProcessingTimeService().getCurrentProcessingTime() + maxDelayMs, self);
        }
    }

    @Override
    public void onProcessingTime(long time) {
        timerSet = false;
        flush();
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        flush();
        super.processWatermark(mark);
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        flush();
        super.prepareSnapshotPreBarrier(checkpointId);
    }

    @Override
    public void endInput() {
        flush();
    }

    private void flush() {
        if (count == 0) {
            return;
        }
        batch[length++] = ']';
        output.collect(new StreamRecord<>(Row.of(key, Arrays.copyOf(batch, length))));
        length = 0;
        count = 0;
    }
}
