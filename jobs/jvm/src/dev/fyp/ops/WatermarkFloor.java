package dev.fyp.ops;

import java.util.List;

import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.watermarkstatus.WatermarkStatus;

/**
 * Passes records on as they are, and a watermark that never falls below a floor: after a restore,
 * the lowest watermark its active subtasks had sent on when the checkpoint was taken.
 *
 * <p>Why: Flink's window aggregations (the SQL TUMBLE of every family) keep their watermark in
 * their state and drop, without a trace, a record whose window ended at or before it. A restarted
 * source derives its watermark from nothing again: until its first watermark, and while the events
 * after the checkpoint run behind the ones before it, the front would route a view behind the
 * restored watermark into a window that has already closed, instead of applying it as a
 * correction. A window's watermark is the lowest of its active inputs', each at most what this
 * operator sent on, so after a restore it starts from the lowest its active subtasks had sent on
 * (union state, {@link #toSave}, {@link #restoredFloor}): at least the watermark any window behind
 * it restored.
 */
public final class WatermarkFloor<T> extends AbstractStreamOperator<T> implements OneInputStreamOperator<T, T> {
    private static final ListStateDescriptor<Long> SENT = new ListStateDescriptor<>("watermark sent on", Types.LONG);

    private transient ListState<Long> sentState;
    private transient long sent;  // the highest watermark sent on (the restored floor at first)
    private transient boolean floorPending;  // the restored floor is yet to be sent on
    private transient boolean idle;  // the input's last watermark status

    /** `in` through a WatermarkFloor (chained to it: an operator factory's default). */
    public static <T> SingleOutputStreamOperator<T> of(DataStream<T> in, String uid, String name) {
        return in.transform(name, in.getType(), new WatermarkFloor<T>()).uid(uid);
    }

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        sentState = context.getOperatorStateStore().getUnionListState(SENT);
        sent = restoredFloor(sentState.get());
        floorPending = sent != Long.MIN_VALUE;
    }

    /**
     * The floor after a restore: the lowest watermark the subtasks had sent on (Long.MIN_VALUE, no
     * floor, when one of them had sent none, or none saved any).
     */
    public static long restoredFloor(Iterable<Long> saved) {
        long lowest = Long.MAX_VALUE;
        boolean any = false;
        for (Long w : saved) {
            lowest = Math.min(lowest, w);
            any = true;
        }
        return any ? lowest : Long.MIN_VALUE;
    }

    /**
     * What a subtask saves: the watermark it has sent on, nothing while its input is idle (a source
     * subtask with no partition to read). A window's watermark is the lowest of its active inputs'
     * (an input without a watermark yet holds it at none); idle inputs it skips.
     */
    public static List<Long> toSave(long sent, boolean idle) {
        return idle ? List.of() : List.of(sent);
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        sentState.update(toSave(sent, idle));
    }

    @Override
    public void processWatermarkStatus(WatermarkStatus status) throws Exception {
        idle = status.isIdle();
        super.processWatermarkStatus(status);
    }

    @Override
    public void processElement(StreamRecord<T> element) {
        if (floorPending) sendFloor();
        output.collect(element);
    }

    @Override
    public void processWatermark(Watermark mark) {
        if (mark.getTimestamp() > sent) {
            sent = mark.getTimestamp();
            floorPending = false;
            output.emitWatermark(mark);
        } else if (floorPending) {
            sendFloor();
        }
    }

    private void sendFloor() {
        floorPending = false;
        output.emitWatermark(new Watermark(sent));
    }
}
